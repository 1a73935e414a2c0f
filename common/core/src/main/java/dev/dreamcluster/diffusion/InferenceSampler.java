package dev.dreamcluster.diffusion;

import java.util.Locale;

/**
 * A deterministic inference sampler over flat float32 latents, as diffusers' schedulers run inside
 * StableDiffusionPipeline: start from N(0, 1) noise times {@link #initNoiseSigma()}; for each i, call
 * the model at {@code timesteps()[i]} on {@code sample * modelInputScale(i)} and pass its output to
 * {@link #step}. Built from the model's training schedule (scheduler_config.json), as EveryDream2's
 * {@code XScheduler.from_config(model scheduler config)} does, so each class's own default
 * timestep_spacing applies (DDIM: leading + steps_offset 1; Euler: linspace).
 */
public interface InferenceSampler {
    /** The model timestep of each step, high noise first (Euler's are fractional). */
    float[] timesteps();

    float initNoiseSigma();

    /** The factor the latents are multiplied by before the model sees them at step i. */
    float modelInputScale(int i);

    /** Replaces {@code sample} (x_t) with x at the next timestep, given the model's (guided) output. */
    void step(int i, float[] modelOutput, float[] sample);

    /** The samplers DreamCluster implements, by EveryDream2's sample_prompts.json names. */
    enum Kind {
        DDIM,
        EULER;

        public static Kind parse(String name) {
            return valueOf(name.toUpperCase(Locale.ROOT));
        }
    }

    static InferenceSampler create(Kind kind, DdpmScheduler schedule, int steps) {
        if (steps < 1 || steps > schedule.numTrainTimesteps()) {
            throw new IllegalArgumentException("num_inference_steps must be in 1.." + schedule.numTrainTimesteps() + ": " + steps);
        }
        return switch (kind) {
            case DDIM -> new DdimSampler(schedule, steps);
            case EULER -> new EulerSampler(schedule, steps);
        };
    }
}
