package dev.dreamcluster.worker.train.grad;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.CollectiveException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * How the groups' flat buffers meet the other ranks, chosen once per run: nothing with one rank; for
 * host buffers ({@link HostStore}) the collective on the float arrays; for device buffers ({@link
 * DeviceStore}) NCCL on the device memory itself when the collective is NCCL and the buffers are on a
 * GPU, else the collective on a host copy (a CPU "device", or GPUs joined by the TCP ring: the same
 * arithmetic, tested in CI on DJL's CPU engine). With a communication thread, a group's collective runs
 * while the compute thread does the next group's host work (pulling its gradients, its update);
 * collectives are still issued one at a time and in the same order on every rank (a single thread,
 * first in first out), so the numbers do not depend on it.
 */
public final class GradSync implements AutoCloseable {
    /** A started collective; {@link #join} before touching its buffers. */
    public interface Pending {
        void join();
    }

    private static final Pending DONE = () -> { };
    private final Collective collective;
    private final ExecutorService thread;

    /**
     * @param collective the run's data plane, or null for one process
     * @param overlap run collectives on a communication thread (host ring with more than one rank only)
     */
    public GradSync(Collective collective, boolean overlap) {
        this.collective = collective;
        boolean on = overlap && world() > 1;
        this.thread = on ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "trainer-comm");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    public int world() {
        return collective == null ? 1 : collective.worldSize();
    }

    public int rank() {
        return collective == null ? 0 : collective.rank();
    }

    /** True when a communication thread overlaps collectives with the compute thread's host work. */
    public boolean overlaps() {
        return thread != null;
    }

    /** Sums every rank's flat gradients of {@code g} into this rank's shard. */
    public Pending reduceScatter(ParamGroup g) {
        if (world() == 1 || g.isEmpty()) {
            return DONE;
        }
        if (g.store().hostGrads() != null) {
            return start(() -> collective.reduceScatter(g.store().hostGrads(), g.shardBounds()));
        }
        device((DeviceStore) g.store(), g.shardBounds()).reduceScatter();
        return DONE;
    }

    /** Every rank's updated shard of {@code g} into every rank's flat parameters. */
    public Pending allGather(ParamGroup g) {
        if (world() == 1 || g.isEmpty()) {
            return DONE;
        }
        if (g.store().hostParams() != null) {
            return start(() -> collective.allGather(g.store().hostParams(), g.shardBounds()));
        }
        device((DeviceStore) g.store(), g.shardBounds()).allGather();
        return DONE;
    }

    private final java.util.Map<DeviceStore, DeviceSync> devices = new java.util.IdentityHashMap<>();

    private DeviceSync device(DeviceStore s, int[] bounds) {
        return devices.computeIfAbsent(s, k -> collective instanceof dev.dreamcluster.nccl.NcclCollective nccl
                && !s.deviceGrads().getDevice().equals(ai.djl.Device.cpu()) ? new DeviceSync.Nccl(nccl, s, bounds)
                : new DeviceSync.Staged(collective, s, bounds));
    }

    /**
     * {@code values} summed over ranks, in place. They travel as float32 (the ring's element type); with
     * one rank they stay as they are.
     */
    public void allReduce(double[] values) {
        if (world() == 1) {
            return;
        }
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) values[i];
        }
        collective.allReduce(f, f.length);
        for (int i = 0; i < f.length; i++) {
            values[i] = f[i];
        }
    }

    private Pending start(Runnable collectiveCall) {
        if (thread == null) {
            collectiveCall.run();
            return DONE;
        }
        Future<?> f = thread.submit(collectiveCall);
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
        devices.values().forEach(DeviceSync::close);
    }
}
