package dev.dreamcluster.io;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;

/**
 * One optimizer step as metrics.jsonl records it. Seconds are split into compute (forward, backward,
 * data), communication (collectives) and optimizer (this rank's shard); NaN means "not measured" or
 * "no validation this step" and is left out of the JSON line. Step 0 carries only the starting
 * val_loss.
 *
 * @param gradNorm global L2 norm of the averaged, unclipped gradients of every trainable tensor
 * @param skipped why the update of this step was skipped (the weights and optimizer state did not
 *     change), or null when it was applied; a skipped step's lrs are 0
 */
public record StepMetrics(int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm, double samplesPerS,
        double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss, String skipped) {

    /** An applied step (or step 0). */
    public StepMetrics(int step, double loss, double lrUnet, double lrTextEncoder, double gradNorm, double samplesPerS,
            double computeSeconds, double commSeconds, double optimizerSeconds, double valLoss) {
        this(step, loss, lrUnet, lrTextEncoder, gradNorm, samplesPerS, computeSeconds, commSeconds, optimizerSeconds, valLoss, null);
    }

    public StepMetrics withValLoss(double v) {
        return new StepMetrics(step, loss, lrUnet, lrTextEncoder, gradNorm, samplesPerS, computeSeconds, commSeconds,
                optimizerSeconds, v, skipped);
    }

    /** {"step":3,"loss":0.96,"lr_unet":5e-4,...}: keys in a fixed order, non-finite values omitted. */
    public String toJsonLine() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("step", step);
        put(n, "loss", loss);
        put(n, "lr_unet", lrUnet);
        put(n, "lr_text_encoder", lrTextEncoder);
        put(n, "grad_norm", gradNorm);
        put(n, "samples_per_s", samplesPerS);
        put(n, "compute_s", computeSeconds);
        put(n, "comm_s", commSeconds);
        put(n, "optimizer_s", optimizerSeconds);
        put(n, "val_loss", valLoss);
        if (skipped != null) {
            n.put("skipped", skipped);
        }
        return n.toString();
    }

    private static void put(ObjectNode n, String k, double v) {
        if (Double.isFinite(v)) {
            n.put(k, v);
        }
    }
}
