package dev.dreamcluster.config;

/**
 * The optimizer-related command-line flags; null (or false) means "not given". Flag names are the
 * train.json keys, and a flag beats the same key in train.json.
 */
public record CliFlags(
        Double lr,
        String lrScheduler,
        Integer lrWarmupSteps,
        Integer lrDecaySteps,
        String optimizerConfig,
        boolean disableTextencTraining,
        boolean disableUnetTraining) {

    public static final CliFlags NONE = new CliFlags(null, null, null, null, null, false, false);
}
