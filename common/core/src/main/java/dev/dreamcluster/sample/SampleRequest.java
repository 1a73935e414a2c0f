package dev.dreamcluster.sample;

/**
 * One sample image to draw: EveryDream2's SampleRequest.
 *
 * @param seed the initial-noise seed; -1 draws a fresh one each time (as EveryDream2)
 * @param randomCaption the prompt is replaced by a training caption each time samples are made
 */
public record SampleRequest(String prompt, String negativePrompt, long seed, int width, int height, boolean randomCaption) {
    /** EveryDream2's sidecar text: the prompt, the negative prompt when there is one, the seed. */
    public String describe(long usedSeed, String usedPrompt) {
        StringBuilder b = new StringBuilder(usedPrompt);
        if (!negativePrompt.isEmpty()) {
            b.append("\n negative prompt: ").append(negativePrompt);
        }
        return b.append("\n seed: ").append(usedSeed).append('\n').toString();
    }
}
