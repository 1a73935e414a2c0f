package dev.dreamcluster.nccl;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.collective.CollectiveException;
import dev.dreamcluster.device.NcclUniqueId;
import dev.dreamcluster.device.PaddedShards;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclConfig_t;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * The GPU data plane: one non-blocking NCCL communicator per run (a fresh unique id per plan), one
 * CUDA stream of its own, and the ring's failure semantics. NCCL has no timeout: every operation is
 * enqueued, then this thread polls {@code cudaStreamQuery} and {@code ncclCommGetAsyncError}; an
 * asynchronous error, {@link #close()} from another thread (the run was stopped) or the timeout
 * makes it call {@code ncclCommAbort} itself (NCCL requires that no other thread is inside NCCL
 * then) and throw a {@link CollectiveException} naming the operation. Every later operation fails at
 * once; peers fail on their own timeout or asynchronous error, as with the ring.
 *
 * <p>Two APIs: core's {@link Collective} over host float[] (staged through pinned host memory and
 * one device buffer: correct everywhere, used by the CPU-shaped step), and in-place operations over
 * device buffers ({@code *Device}, addresses of contiguous CUDA tensors) for the GPU ZeRO step.
 * ZeRO's uneven shards are padded to NCCL's single count by {@link PaddedShards}. Not thread-safe:
 * one compute thread calls it; only {@link #close()} may come from elsewhere.
 */
public final class NcclCollective implements Collective {
    /** ncclDataType_t values (NCCL's ABI; literals so that this class initialises without CUDA). */
    public static final int FLOAT32 = 7;
    public static final int BFLOAT16 = 9;
    static final int FLOAT16 = 6;
    /** NCCL_API_MAGIC (0xcafebeef); the 12.9 presets do not export it, NCCL checks it in every config. */
    static final int CONFIG_MAGIC = 0xcafebeef;
    /** NCCL_CONFIG_UNDEF_INT: "use NCCL's default or the NCCL_* variable" for every int field. */
    static final int UNDEF_INT = Integer.MIN_VALUE;

    private final int rank;
    private final int world;
    private final int cudaDevice;
    private volatile long timeoutNanos;
    private volatile String timeoutWhat = "an operation";
    private final ReentrantLock inUse = new ReentrantLock();
    private final CUstream_st stream;
    private ncclComm comm;
    private volatile boolean closing;
    private String failure;
    private boolean released;
    private Pointer device;
    private long deviceBytes;
    private FloatPointer host;
    private long hostFloats;
    private float[] staging = new float[0];

    private NcclCollective(int rank, int world, int cudaDevice, Duration timeout, CUstream_st stream) {
        this.rank = rank;
        this.world = world;
        this.cudaDevice = cudaDevice;
        this.timeoutNanos = timeout.toNanos();
        this.stream = stream;
    }

    /**
     * Joins the communicator of {@code uniqueId} as {@code rank} of {@code world} on CUDA device
     * {@code cudaDevice} (one GPU per process). Every rank must call it within {@code timeout}.
     *
     * @throws CollectiveException when NCCL is unavailable here or the ranks do not meet in time
     */
    public static NcclCollective connect(byte[] uniqueId, int rank, int world, int cudaDevice, Duration timeout) {
        String why = Nccl.unavailableReason();
        if (why != null) {
            throw new CollectiveException("rank " + rank + ": " + why);
        }
        if (uniqueId.length != NcclUniqueId.BYTES || NcclUniqueId.isBlank(uniqueId)) {
            throw new IllegalArgumentException("an NCCL unique id has " + NcclUniqueId.BYTES + " non-zero bytes");
        }
        check(cudart.cudaSetDevice(cudaDevice), "cudaSetDevice(" + cudaDevice + ")");
        CUstream_st stream = new CUstream_st();
        check(cudart.cudaStreamCreateWithFlags(stream, cudart.cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        NcclCollective c = new NcclCollective(rank, world, cudaDevice, timeout, stream);
        ncclUniqueId id = new ncclUniqueId();
        ncclConfig_t config = nonBlockingConfig();
        try {
            id.internal().put(uniqueId);
            c.comm = new ncclComm();
            c.inUse.lock();
            try {
                long start = System.nanoTime();
                c.enqueued(nccl.ncclCommInitRankConfig(c.comm, world, id, rank, config), "ncclCommInitRankConfig", start);
            } finally {
                c.inUse.unlock();
            }
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        } finally {
            id.close();
            config.close();
        }
    }

    /**
     * ncclConfig_t as NCCL_CONFIG_INITIALIZER fills it (the presets have no such helper): size, magic,
     * version, every int field NCCL_CONFIG_UNDEF_INT and every pointer NULL (the native allocation is
     * not guaranteed to be zeroed), then blocking = 0. Reflection keeps it right for any presets
     * version's field list; NCCL reads min(size, its own sizeof), so newer headers stay compatible.
     */
    static ncclConfig_t nonBlockingConfig() {
        ncclConfig_t c = new ncclConfig_t();
        Set<String> fixed = Set.of("magic", "version", "blocking", "position", "capacity", "limit");
        try {
            for (Method m : ncclConfig_t.class.getDeclaredMethods()) {
                if (m.getParameterCount() != 1 || fixed.contains(m.getName()) || m.getReturnType() != ncclConfig_t.class) {
                    continue;
                }
                Class<?> t = m.getParameterTypes()[0];
                if (t == int.class) {
                    m.invoke(c, UNDEF_INT);
                } else if (Pointer.class.isAssignableFrom(t)) {
                    m.invoke(c, (Object) null);
                }
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot fill ncclConfig_t", e);
        }
        c.size(Loader.sizeof(ncclConfig_t.class));
        c.magic(CONFIG_MAGIC);
        c.version(nccl.NCCL_VERSION_CODE);
        c.blocking(0);
        return c;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return world;
    }

    // ---- core's Collective over host arrays (staged) ----

    @Override
    public void reduceScatter(float[] data, int[] bounds) {
        PaddedShards p = shards(bounds);
        run("reduce-scatter", () -> {
            stage(data, p);
            long count = p.count();
            long base = device.address();
            enqueue(nccl.ncclReduceScatter(at(base), at(base + 4 * p.paddedOffset(rank)), count, FLOAT32, nccl.ncclSum, comm,
                    stream), "ncclReduceScatter");
            copyOut(p.paddedOffset(rank), count);
            System.arraycopy(staging, (int) p.paddedOffset(rank), data, p.flatOffset(rank), p.length(rank));
        });
    }

    @Override
    public void allGather(float[] data, int[] bounds) {
        PaddedShards p = shards(bounds);
        run("all-gather", () -> {
            stage(data, p);
            long base = device.address();
            enqueue(nccl.ncclAllGather(at(base + 4 * p.paddedOffset(rank)), at(base), p.count(), FLOAT32, comm, stream),
                    "ncclAllGather");
            copyOut(0, p.paddedLength());
            p.unpad(staging, data);
        });
    }

    @Override
    public void allReduce(float[] data, int len) {
        run("all-reduce", () -> {
            stageFlat(data, len);
            enqueue(nccl.ncclAllReduce(device, device, len, FLOAT32, nccl.ncclSum, comm, stream), "ncclAllReduce");
            copyOut(0, len);
            System.arraycopy(staging, 0, data, 0, len);
        });
    }

    @Override
    public void broadcast(float[] data, int len, int root) {
        run("broadcast", () -> {
            stageFlat(data, len);
            enqueue(nccl.ncclBroadcast(device, device, len, FLOAT32, root, comm, stream), "ncclBroadcast");
            copyOut(0, len);
            System.arraycopy(staging, 0, data, 0, len);
        });
    }

    @Override
    public void setTimeout(Duration timeout, String what) {
        this.timeoutNanos = timeout.toNanos();
        this.timeoutWhat = what;
    }

    @Override
    public void barrier() {
        allReduce(new float[1], 1);
    }

    // ---- in place over device buffers (the GPU step) ----

    /**
     * Reduce-scatter in place over {@code world * count} elements at device address {@code address}:
     * afterwards block {@code rank} ([rank * count, (rank + 1) * count)) holds the sum over ranks.
     * Waits for the device's pending work first (libtorch writes on its own stream).
     */
    public void reduceScatterDevice(long address, long count, int dtype) {
        run("reduce-scatter", () -> {
            check(cudart.cudaDeviceSynchronize(), "cudaDeviceSynchronize");
            enqueue(nccl.ncclReduceScatter(at(address), at(address + rank * count * bytes(dtype)), count, dtype, nccl.ncclSum,
                    comm, stream), "ncclReduceScatter");
            await("reduce-scatter");
        });
    }

    /** All-gather in place: every rank's block {@code rank} of {@code count} elements into every rank's buffer. */
    public void allGatherDevice(long address, long count, int dtype) {
        run("all-gather", () -> {
            check(cudart.cudaDeviceSynchronize(), "cudaDeviceSynchronize");
            enqueue(nccl.ncclAllGather(at(address + rank * count * bytes(dtype)), at(address), count, dtype, comm, stream),
                    "ncclAllGather");
            await("all-gather");
        });
    }

    /** Sum over ranks of {@code count} elements at {@code address}, in place. */
    public void allReduceDevice(long address, long count, int dtype) {
        run("all-reduce", () -> {
            check(cudart.cudaDeviceSynchronize(), "cudaDeviceSynchronize");
            enqueue(nccl.ncclAllReduce(at(address), at(address), count, dtype, nccl.ncclSum, comm, stream), "ncclAllReduce");
            await("all-reduce");
        });
    }

    static long bytes(int dtype) {
        return dtype == FLOAT32 ? 4 : dtype == BFLOAT16 || dtype == FLOAT16 ? 2 : 1;
    }

    // ---- staging ----

    private PaddedShards shards(int[] bounds) {
        if (bounds.length != world + 1) {
            throw new IllegalArgumentException("bounds must have worldSize + 1 = " + (world + 1) + " entries, got " + bounds.length);
        }
        return new PaddedShards(bounds);
    }

    private void stage(float[] data, PaddedShards p) {
        ensure(p.paddedLength());
        p.pad(data, staging);
        copyIn(p.paddedLength());
    }

    private void stageFlat(float[] data, int len) {
        ensure(len);
        System.arraycopy(data, 0, staging, 0, len);
        copyIn(len);
    }

    private void ensure(long floats) {
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("host-staged NCCL buffers are limited to 2^31 floats; use the device operations");
        }
        if (staging.length < floats) {
            staging = new float[(int) floats];
        }
        if (hostFloats < floats) {
            if (host != null) {
                cudart.cudaFreeHost(host);
            }
            Pointer p = new Pointer();
            check(cudart.cudaMallocHost(p, floats * 4), "cudaMallocHost(" + floats * 4 + " B)");
            host = new FloatPointer(p);
            host.capacity(floats).limit(floats);
            hostFloats = floats;
        }
        if (deviceBytes < floats * 4) {
            if (device != null) {
                cudart.cudaFree(device);
            }
            Pointer d = new Pointer();
            check(cudart.cudaMalloc(d, floats * 4), "cudaMalloc(" + floats * 4 + " B)");
            device = d;
            deviceBytes = floats * 4;
        }
    }

    private void copyIn(long floats) {
        host.position(0).put(staging, 0, (int) floats);
        check(cudart.cudaMemcpyAsync(device, host, floats * 4, cudart.cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D");
    }

    /** Device [from, from + floats) into staging at the same offsets, waiting for the stream. */
    private void copyOut(long from, long floats) {
        check(cudart.cudaMemcpyAsync(at(host.address() + 4 * from), at(device.address() + 4 * from), floats * 4,
                cudart.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H");
        await("copy to host");
        host.position(from).get(staging, (int) from, (int) floats);
        host.position(0);
    }

    // ---- progress, errors, abort ----

    private void run(String op, Runnable body) {
        inUse.lock();
        try {
            if (failure != null) {
                throw new CollectiveException("rank " + rank + ": nccl " + op + " refused: the communicator failed earlier (" + failure + ")");
            }
            if (closing) {
                throw new CollectiveException("rank " + rank + ": nccl " + op + " on a closed communicator");
            }
            check(cudart.cudaSetDevice(cudaDevice), "cudaSetDevice");
            body.run();
        } finally {
            if (closing) {
                release();
            }
            inUse.unlock();
        }
    }

    /** A non-blocking NCCL call returned: ncclInProgress means enqueueing continues; poll until it settles. */
    private void enqueue(int ret, String call) {
        enqueued(ret, call, System.nanoTime());
    }

    private void enqueued(int ret, String call, long start) {
        if (ret == nccl.ncclSuccess) {
            return;
        }
        if (ret != nccl.ncclInProgress) {
            fail(call + ": " + nccl.ncclGetErrorString(ret).getString() + lastError());
        }
        int[] state = {nccl.ncclInProgress};
        while (true) {
            nccl.ncclCommGetAsyncError(comm, state);
            if (state[0] == nccl.ncclSuccess) {
                return;
            }
            if (state[0] != nccl.ncclInProgress) {
                fail(call + ": " + nccl.ncclGetErrorString(state[0]).getString() + lastError());
            }
            pace(call, start);
        }
    }

    /** Waits for this communicator's stream: done, an asynchronous NCCL error, a close, or the timeout. */
    private void await(String op) {
        long start = System.nanoTime();
        int[] state = {0};
        while (true) {
            int q = cudart.cudaStreamQuery(stream);
            if (q == cudart.cudaSuccess) {
                return;
            }
            if (q != cudart.cudaErrorNotReady) {
                fail(op + ": CUDA " + cudart.cudaGetErrorString(q).getString());
            }
            nccl.ncclCommGetAsyncError(comm, state);
            if (state[0] != nccl.ncclSuccess && state[0] != nccl.ncclInProgress) {
                fail(op + ": " + nccl.ncclGetErrorString(state[0]).getString() + lastError());
            }
            pace(op, start);
        }
    }

    private void pace(String op, long start) {
        if (closing) {
            fail(op + " interrupted: the collective was closed (run stopped)");
        }
        if (System.nanoTime() - start > timeoutNanos) {
            fail(op + " timed out after " + timeoutNanos / 1_000_000 + " ms, the bound for " + timeoutWhat + " (a peer of rank " + rank
                    + " stalled or died); communicator aborted");
        }
        LockSupport.parkNanos(20_000);
    }

    private String lastError() {
        if (comm == null) {
            return "";
        }
        String s = nccl.ncclGetLastError(comm).getString();
        return s == null || s.isBlank() ? "" : " (" + s + ")";
    }

    /** Aborts the communicator (this thread is the only one in NCCL) and throws. */
    private void fail(String what) {
        failure = what;
        abortComm();
        throw new CollectiveException("rank " + rank + ": nccl " + what);
    }

    private void abortComm() {
        if (comm != null && !comm.isNull()) {
            nccl.ncclCommAbort(comm);
        }
        comm = null;
    }

    static void check(int cudaOrNcclError, String call) {
        if (cudaOrNcclError != 0) {
            throw new CollectiveException(call + " failed with error " + cudaOrNcclError);
        }
    }

    private static Pointer at(long address) {
        return new Address(address);
    }

    /** A raw address for NCCL and cudaMemcpy (never dereferenced from Java). */
    private static final class Address extends Pointer {
        Address(long address) {
            this.address = address;
        }
    }

    /**
     * Finalizes and destroys the communicator (aborting it after a failure or when finalize does not
     * settle within the timeout) and frees the buffers and the stream. From another thread while an
     * operation is in progress it only flags it: that thread aborts and releases.
     */
    @Override
    public void close() {
        closing = true;
        if (inUse.tryLock()) {
            try {
                release();
            } finally {
                inUse.unlock();
            }
        }
    }

    private void release() {
        if (released) {
            return;
        }
        released = true;
        if (comm != null && !comm.isNull() && failure == null) {
            long start = System.nanoTime();
            int r = nccl.ncclCommFinalize(comm);
            int[] state = {r == nccl.ncclSuccess ? nccl.ncclSuccess : nccl.ncclInProgress};
            while (r == nccl.ncclInProgress && state[0] == nccl.ncclInProgress && System.nanoTime() - start < timeoutNanos) {
                nccl.ncclCommGetAsyncError(comm, state);
                LockSupport.parkNanos(20_000);
            }
            if (state[0] == nccl.ncclSuccess) {
                nccl.ncclCommDestroy(comm);
                comm = null;
            }
        }
        abortComm();
        if (device != null) {
            cudart.cudaFree(device);
            device = null;
        }
        if (host != null) {
            cudart.cudaFreeHost(host);
            host = null;
        }
        if (stream != null && !stream.isNull()) {
            cudart.cudaStreamDestroy(stream);
        }
    }
}
