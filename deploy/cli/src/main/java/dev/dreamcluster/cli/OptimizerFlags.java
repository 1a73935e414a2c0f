package dev.dreamcluster.cli;

import dev.dreamcluster.config.CliFlags;
import picocli.CommandLine.Option;

/** The optimizer-related flags every training command shares; names are train.json's keys. */
public final class OptimizerFlags {
    @Option(names = "--lr", paramLabel = "X", description = "learning rate (beats train.json lr and optimizer.json base.lr)")
    Double lr;

    @Option(names = "--lr_scheduler", paramLabel = "S",
            description = "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial "
                    + "(optimizer.json base.lr_scheduler wins over it)")
    String lrScheduler;

    @Option(names = "--lr_warmup_steps", paramLabel = "N", description = "warmup, in optimizer updates")
    Integer lrWarmupSteps;

    @Option(names = "--lr_decay_steps", paramLabel = "N", description = "schedule length, in optimizer updates (< 1: auto)")
    Integer lrDecaySteps;

    @Option(names = "--optimizer_config", paramLabel = "FILE", description = "optimizer.json (relative to the working directory)")
    String optimizerConfig;

    @Option(names = "--disable_textenc_training", description = "do not train the text encoder")
    boolean disableTextencTraining;

    @Option(names = "--disable_unet_training", description = "do not train the UNet")
    boolean disableUnetTraining;

    public CliFlags toFlags() {
        return new CliFlags(lr, lrScheduler, lrWarmupSteps, lrDecaySteps, optimizerConfig, disableTextencTraining,
                disableUnetTraining);
    }
}
