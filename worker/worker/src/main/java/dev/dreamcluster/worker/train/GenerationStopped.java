package dev.dreamcluster.worker.train;

import java.nio.file.Path;

/**
 * Every rank of a cluster run stopped after the same step because one of them asked to (its node got
 * SIGTERM and is leaving): the checkpoint of that step is committed, and the generation ends so the
 * coordinator can start the next one from it without the leaving node. Not a failure of the run.
 */
public final class GenerationStopped extends RuntimeException {
    private final int step;
    private final Path checkpoint;

    public GenerationStopped(int step, Path checkpoint) {
        super("generation stopped after step " + step + " (a worker is leaving); checkpoint " + checkpoint + " committed");
        this.step = step;
        this.checkpoint = checkpoint;
    }

    public int step() {
        return step;
    }

    public Path checkpoint() {
        return checkpoint;
    }
}
