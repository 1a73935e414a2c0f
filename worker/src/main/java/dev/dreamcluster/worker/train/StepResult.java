package dev.dreamcluster.worker.train;

/**
 * What one optimizer step reports. {@code valLoss} is NaN when the step ran no validation.
 *
 * @param gradNorm global L2 norm of the (averaged, unclipped) gradients of every trainable tensor
 */
public record StepResult(int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm, double samplesPerS,
        double valLoss) {
    public StepResult withValLoss(double v) {
        return new StepResult(step, loss, lrUnet, lrTextEncoder, gradNorm, samplesPerS, v);
    }
}
