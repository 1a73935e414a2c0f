package dev.dreamcluster.worker.train.step;

import java.util.function.DoubleSupplier;

/**
 * Where a step's time went: compute (data, forward, backward, copies between libtorch and the flat
 * buffers), communication (collectives, or waiting for the communication thread) and the optimizer.
 * Each phase wraps a part of the step; the arithmetic never sees the clock.
 */
final class Phases {
    private final long start = System.nanoTime();
    private long compute;
    private long comm;
    private long optimizer;

    double compute(DoubleSupplier work) {
        long t0 = System.nanoTime();
        double v = work.getAsDouble();
        compute += System.nanoTime() - t0;
        return v;
    }

    void compute(Runnable work) {
        long t0 = System.nanoTime();
        work.run();
        compute += System.nanoTime() - t0;
    }

    void comm(Runnable work) {
        long t0 = System.nanoTime();
        work.run();
        comm += System.nanoTime() - t0;
    }

    void optimizer(Runnable work) {
        long t0 = System.nanoTime();
        work.run();
        optimizer += System.nanoTime() - t0;
    }

    double seconds() {
        return (System.nanoTime() - start) / 1e9;
    }

    /** Everything that was not communication or the optimizer counts as compute. */
    double computeSeconds() {
        return seconds() - (comm + optimizer) / 1e9;
    }

    double commSeconds() {
        return comm / 1e9;
    }

    double optimizerSeconds() {
        return optimizer / 1e9;
    }
}
