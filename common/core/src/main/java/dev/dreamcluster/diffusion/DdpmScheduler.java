package dev.dreamcluster.diffusion;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import java.util.Locale;

/**
 * diffusers' DDPMScheduler as training uses it ({@code scheduler/scheduler_config.json}): the beta
 * schedule, {@code add_noise} and the training target (epsilon, or v for v_prediction models such as
 * SD 2.x 768). Per timestep t: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise, and
 * v = sqrt(abar_t) noise - sqrt(1 - abar_t) x_0.
 */
public final class DdpmScheduler {
    public enum Prediction {
        EPSILON,
        V_PREDICTION
    }

    private final int numTrainTimesteps;
    private final double betaStart;
    private final double betaEnd;
    private final String betaSchedule;
    private final Prediction prediction;
    private final float[] alphaCumprod;
    private final float[] sqrtAlphaCumprod;
    private final float[] sqrtOneMinusAlphaCumprod;

    public DdpmScheduler(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule, Prediction prediction) {
        if (numTrainTimesteps < 2) {
            throw new IllegalArgumentException("num_train_timesteps must be >= 2: " + numTrainTimesteps);
        }
        this.numTrainTimesteps = numTrainTimesteps;
        this.betaStart = betaStart;
        this.betaEnd = betaEnd;
        this.betaSchedule = betaSchedule;
        this.prediction = prediction;
        float[] betas = new float[numTrainTimesteps];
        for (int i = 0; i < numTrainTimesteps; i++) {
            double f = (double) i / (numTrainTimesteps - 1);
            betas[i] = switch (betaSchedule) {
                // torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=float32) ** 2
                case "scaled_linear" -> {
                    float s = (float) (Math.sqrt(betaStart) + f * (Math.sqrt(betaEnd) - Math.sqrt(betaStart)));
                    yield s * s;
                }
                case "linear" -> (float) (betaStart + f * (betaEnd - betaStart));
                default -> throw new IllegalArgumentException("beta_schedule must be scaled_linear or linear, got " + betaSchedule);
            };
        }
        alphaCumprod = new float[numTrainTimesteps];
        sqrtAlphaCumprod = new float[numTrainTimesteps];
        sqrtOneMinusAlphaCumprod = new float[numTrainTimesteps];
        float cum = 1f;
        for (int i = 0; i < numTrainTimesteps; i++) {
            cum *= 1f - betas[i]; // float32 cumprod, as torch.cumprod(alphas) computes it
            alphaCumprod[i] = cum;
            sqrtAlphaCumprod[i] = (float) Math.sqrt(cum);
            sqrtOneMinusAlphaCumprod[i] = (float) Math.sqrt(1f - cum);
        }
    }

    /** Stable Diffusion's schedule: scaled_linear 0.00085 to 0.012 over 1000 steps. */
    public static DdpmScheduler stableDiffusion(Prediction p) {
        return new DdpmScheduler(1000, 0.00085, 0.012, "scaled_linear", p);
    }

    public static DdpmScheduler fromJson(JsonNode n) {
        // training noise depends on these too; DreamCluster computes the betas from the schedule only
        if (n.hasNonNull("trained_betas")) {
            throw new dev.dreamcluster.config.ConfigError("scheduler/scheduler_config.json at trained_betas: "
                    + n.get("trained_betas") + " is not supported (allowed: null; the betas come from beta_schedule)");
        }
        if (n.path("rescale_betas_zero_snr").asBoolean(false)) {
            throw new dev.dreamcluster.config.ConfigError("scheduler/scheduler_config.json at rescale_betas_zero_snr: true"
                    + " is not supported (zero-terminal-SNR betas are not implemented; allowed: false)");
        }
        String pred = n.path("prediction_type").asText("epsilon").toUpperCase(Locale.ROOT);
        Prediction p;
        try {
            p = Prediction.valueOf(pred);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("prediction_type must be epsilon or v_prediction, got " + pred.toLowerCase(Locale.ROOT));
        }
        return new DdpmScheduler(n.path("num_train_timesteps").asInt(1000), n.path("beta_start").asDouble(0.00085),
                n.path("beta_end").asDouble(0.012), n.path("beta_schedule").asText("scaled_linear"), p);
    }

    public ObjectNode toJson() {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("_class_name", "DDPMScheduler");
        n.put("_diffusers_version", "0.21.4");
        n.put("beta_end", betaEnd);
        n.put("beta_schedule", betaSchedule);
        n.put("beta_start", betaStart);
        n.put("clip_sample", false);
        n.put("num_train_timesteps", numTrainTimesteps);
        n.put("prediction_type", prediction.name().toLowerCase(Locale.ROOT));
        n.put("set_alpha_to_one", false);
        n.put("steps_offset", 1);
        n.putNull("trained_betas");
        return n;
    }

    public int numTrainTimesteps() {
        return numTrainTimesteps;
    }

    public Prediction prediction() {
        return prediction;
    }

    /** abar_t (float32 alphas_cumprod), what the inference samplers derive their steps from. */
    public float alphaCumprod(int t) {
        return alphaCumprod[t];
    }

    /** sqrt(abar_t): the weight of x_0 in x_t. */
    public float sqrtAlphaCumprod(int t) {
        return sqrtAlphaCumprod[t];
    }

    /** sqrt(1 - abar_t): the weight of the noise in x_t. */
    public float sqrtOneMinusAlphaCumprod(int t) {
        return sqrtOneMinusAlphaCumprod[t];
    }

    /** x_t for one sample, element-wise over flat arrays. */
    public void addNoise(float[] x0, float[] noise, int t, float[] out) {
        float a = sqrtAlphaCumprod[t];
        float b = sqrtOneMinusAlphaCumprod[t];
        for (int i = 0; i < x0.length; i++) {
            out[i] = a * x0[i] + b * noise[i];
        }
    }

    /** The training target for one sample: the noise, or v. */
    public void target(float[] x0, float[] noise, int t, float[] out) {
        if (prediction == Prediction.EPSILON) {
            System.arraycopy(noise, 0, out, 0, noise.length);
            return;
        }
        float a = sqrtAlphaCumprod[t];
        float b = sqrtOneMinusAlphaCumprod[t];
        for (int i = 0; i < x0.length; i++) {
            out[i] = a * noise[i] - b * x0[i];
        }
    }
}
