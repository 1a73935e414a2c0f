package dev.dreamcluster.worker.train;

import dev.dreamcluster.collective.CollectiveException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * One communication thread per trainer, so a component's collective runs while the compute thread
 * does the other component's host work (flattening its gradients, its optimizer step, writing
 * parameters back into libtorch). Collectives are still issued one at a time and in the same order on
 * every rank: each {@link #start} is joined before the next collective starts, on either thread.
 * Only the pure-Java host path uses it (float arrays and the TCP ring); DJL stays on the compute thread.
 *
 * <p>Off (everything runs inline, as before) with one rank, on the GPU path, or when the environment
 * sets {@code DREAMCLUSTER_OVERLAP=off} (inherited by the worker JVMs; {@code bench step --overlap}
 * compares both).
 */
final class Overlap implements AutoCloseable {
    /** A started collective; {@link #join} before touching its buffers or starting the next one. */
    interface Pending {
        void join();
    }

    private static final Pending DONE = () -> { };
    private final ExecutorService thread;

    Overlap(boolean enabled) {
        boolean on = enabled && !"off".equalsIgnoreCase(System.getenv("DREAMCLUSTER_OVERLAP"));
        this.thread = on ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "trainer-comm");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    boolean enabled() {
        return thread != null;
    }

    /** Runs {@code collective} on the communication thread (inline when off). */
    Pending start(Runnable collective) {
        if (thread == null) {
            collective.run();
            return DONE;
        }
        Future<?> f = thread.submit(collective);
        return () -> {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException r) {
                    throw r; // a CollectiveException keeps its message (the neighbour that failed, the timeout)
                }
                throw new CollectiveException("collective failed on the communication thread: " + e.getCause(), e.getCause());
            } catch (InterruptedException e) {
                f.cancel(true);
                Thread.currentThread().interrupt();
                throw new CollectiveException("interrupted while waiting for a collective", e);
            }
        };
    }

    @Override
    public void close() {
        if (thread != null) {
            thread.shutdownNow();
        }
    }
}
