package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * An optimizer over one shard: the {@link TensorSlice}s a worker owns, laid end to end in the shard's
 * flat parameter and gradient arrays (slice i starts at {@code offset(i)}). Subclasses hold the
 * per-step scalars and call a kernel; this class owns the state, the step count and the threads.
 *
 * <p>Work is cut into tasks of {@value #TASK_BLOCKS} blocks of 256 elements, and thread w always runs
 * the same contiguous run of tasks (cut so every thread gets about the same number of elements).
 * Tasks touch disjoint elements and blocks and each element's arithmetic does not depend on which
 * thread does it, so the result is bit-identical for any thread count; the fixed assignment also
 * keeps each thread on the same memory from step to step.
 */
public abstract class Optimizer implements AutoCloseable {
    static final int TASK_BLOCKS = 64;

    protected final OptimizerHyper hyper;
    private final TensorState[] states;
    private final int[] offsets;
    private final int totalLength;
    private final int[] taskSlot;
    private final int[] taskFrom;
    private final int[] taskTo;
    private final int threads;
    /** Thread w runs tasks [threadFirstTask[w], threadFirstTask[w + 1]). */
    private final int[] threadFirstTask;
    private final ExecutorService pool;
    /**
     * Unused elements after each thread's 256-element scratch (128 bytes): the JVM lays the arrays out
     * one after another, so without it the last cache line one thread writes every block held the
     * start of the next thread's scratch, and the two cores passed that line back and forth. Two threads
     * against one, four JVMs alternating without and with the padding (2026-12-07, bin/bench optim
     * --rounds 3, the 2-core VM): AdamW8bit 1.07x and 1.21x without, 1.44x and 1.64x with; Lion8bit
     * 1.24x and 1.34x without, 1.62x and 1.88x with. fp32 AdamW and Lion use no scratch.
     */
    static final int SCRATCH_PAD = 32;
    private final float[][] scratch1;
    private final float[][] scratch2;
    private final float[][] scratch3;
    private final int[][] scratchIdx;
    private long step;

    protected Optimizer(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1: " + threads);
        }
        this.hyper = hyper;
        this.threads = threads;
        this.states = new TensorState[slices.size()];
        this.offsets = new int[slices.size()];
        long off = 0;
        List<int[]> tasks = new ArrayList<>();
        for (int i = 0; i < states.length; i++) {
            TensorSlice s = slices.get(i);
            states[i] = TensorState.zeros(s, TensorState.kindFor(hyper.name(), s.numel()));
            offsets[i] = Math.toIntExact(off);
            off += s.length();
            for (int b = 0; b < s.blocks(); b += TASK_BLOCKS) {
                tasks.add(new int[] {i, b, Math.min(s.blocks(), b + TASK_BLOCKS)});
            }
        }
        this.totalLength = Math.toIntExact(off);
        this.taskSlot = tasks.stream().mapToInt(t -> t[0]).toArray();
        this.taskFrom = tasks.stream().mapToInt(t -> t[1]).toArray();
        this.taskTo = tasks.stream().mapToInt(t -> t[2]).toArray();
        this.threadFirstTask = assign(slices, tasks, threads);
        this.scratch1 = new float[threads][QuantMap.BLOCK + SCRATCH_PAD];
        this.scratch2 = new float[threads][QuantMap.BLOCK + SCRATCH_PAD];
        this.scratch3 = new float[threads][QuantMap.BLOCK + SCRATCH_PAD];
        this.scratchIdx = new int[threads][QuantMap.BLOCK + SCRATCH_PAD];
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "optimizer-" + hyper.name().key());
            t.setDaemon(true);
            return t;
        });
    }

    /** A new optimizer of the kind {@code hyper.name()} names, with zero state. */
    public static Optimizer create(OptimizerHyper hyper, List<TensorSlice> slices, int threads) {
        return switch (hyper.name()) {
            case ADAMW -> new AdamW(hyper, slices, threads);
            case ADAMW8BIT -> new AdamW8bit(hyper, slices, threads);
            case LION -> new Lion(hyper, slices, threads);
            case LION8BIT -> new Lion8bit(hyper, slices, threads);
        };
    }

    /**
     * One update of every slice at learning rate {@code lr}: {@code params[offset(i) ..]} and {@code
     * grads[offset(i) ..]} hold slice i. Gradients are read only.
     */
    public final void step(float[] params, float[] grads, double lr) {
        step(params, grads, 0, lr);
    }

    /**
     * The same with the shard at {@code base} in larger arrays (a component's whole flat buffers):
     * slice i at {@code base + offset(i)}. The update is in place, so a ZeRO-1 rank updates its segment
     * of the flat parameters without copying it out and back.
     */
    public final void step(float[] params, float[] grads, int base, double lr) {
        if (base < 0 || params.length - base < totalLength || grads.length - base < totalLength) {
            throw new IllegalArgumentException("buffers of " + params.length + "/" + grads.length + " elements from " + base
                    + " cannot hold the " + totalLength + " elements of the slices");
        }
        if (!(lr >= 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr must be finite and >= 0: " + lr);
        }
        step++;
        prepare(lr, step);
        if (pool == null || taskSlot.length < 2) {
            for (int t = 0; t < taskSlot.length; t++) {
                runTask(t, params, grads, base, 0);
            }
            return;
        }
        List<Future<?>> futures = new ArrayList<>(threads - 1);
        for (int w = 1; w < threads; w++) {
            final int worker = w;
            futures.add(pool.submit(() -> runTasks(params, grads, base, worker)));
        }
        runTasks(params, grads, base, 0);
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted during optimizer step", e);
            } catch (ExecutionException e) {
                throw new IllegalStateException("optimizer step failed", e.getCause());
            }
        }
    }

    private void runTasks(float[] params, float[] grads, int base, int worker) {
        for (int t = threadFirstTask[worker]; t < threadFirstTask[worker + 1]; t++) {
            runTask(t, params, grads, base, worker);
        }
    }

    /** Cuts the task list into {@code threads} contiguous runs of about equal element counts. */
    private static int[] assign(List<TensorSlice> slices, List<int[]> tasks, int threads) {
        long[] elems = new long[tasks.size() + 1];
        for (int t = 0; t < tasks.size(); t++) {
            int[] task = tasks.get(t);
            int length = slices.get(task[0]).length();
            elems[t + 1] = elems[t] + Math.min(length, task[2] * QuantMap.BLOCK) - (long) task[1] * QuantMap.BLOCK;
        }
        int[] first = new int[threads + 1];
        int t = 0;
        for (int w = 1; w < threads; w++) {
            long target = elems[tasks.size()] * w / threads;
            while (t < tasks.size() && elems[t] < target) {
                t++;
            }
            first[w] = t;
        }
        first[threads] = tasks.size();
        return first;
    }

    private void runTask(int t, float[] params, float[] grads, int base, int worker) {
        int slot = taskSlot[t];
        run(states[slot], params, grads, base + offsets[slot], taskFrom[t], taskTo[t], scratch1[worker], scratch2[worker],
                scratch3[worker], scratchIdx[worker]);
    }

    /** Computes this step's scalars; {@code t} is the 1-based step number. */
    protected abstract void prepare(double lr, long t);

    /**
     * Updates blocks [blockFrom, blockTo) of one slice whose elements start at {@code off} in the
     * shard arrays. fp32 kernels treat a block as 256 consecutive elements. The scratch arrays (256
     * floats or ints each) belong to the calling thread.
     */
    protected abstract void run(TensorState s, float[] params, float[] grads, int off, int blockFrom, int blockTo,
            float[] scratch1, float[] scratch2, float[] scratch3, int[] scratchIdx);

    /** Element range [from, to) of blocks [blockFrom, blockTo) in a slice of {@code length}. */
    protected static int elemFrom(int blockFrom) {
        return blockFrom * QuantMap.BLOCK;
    }

    protected static int elemTo(int blockTo, int length) {
        return Math.min(length, blockTo * QuantMap.BLOCK);
    }

    public OptimizerHyper hyper() {
        return hyper;
    }

    /** Updates taken so far. */
    public long stepCount() {
        return step;
    }

    /** Where slice {@code i} starts in the shard arrays. */
    public int offset(int i) {
        return offsets[i];
    }

    /** Elements of the shard (sum of slice lengths). */
    public int length() {
        return totalLength;
    }

    /** Bytes of optimizer state this shard holds. */
    public long stateBytes() {
        long n = 0;
        for (TensorState s : states) {
            n += s.bytes();
        }
        return n;
    }

    /** The live state (not a copy): for saving; use {@link #load} to replace it. */
    public OptimizerState state() {
        return new OptimizerState(hyper, step, List.of(states));
    }

    /** Replaces this optimizer's state with {@code saved}, which must describe the same slices. */
    public void load(OptimizerState saved) {
        if (!saved.hyper().name().equals(hyper.name())) {
            throw new IllegalArgumentException("state is for " + saved.hyper().name().key() + ", optimizer is "
                    + hyper.name().key());
        }
        if (saved.tensors().size() != states.length) {
            throw new IllegalArgumentException("state has " + saved.tensors().size() + " slices, optimizer has "
                    + states.length + " (re-shard it first)");
        }
        for (int i = 0; i < states.length; i++) {
            TensorState from = saved.tensors().get(i);
            TensorState to = states[i];
            if (!from.slice.equals(to.slice) || from.kind != to.kind) {
                throw new IllegalArgumentException("state slice " + from.slice + " (" + from.kind
                        + ") does not match optimizer slice " + to.slice + " (" + to.kind + ")");
            }
            copy(from.m, to.m);
            copy(from.v, to.v);
            copy(from.absmax1, to.absmax1);
            copy(from.absmax2, to.absmax2);
            if (from.c1 != null) {
                System.arraycopy(from.c1, 0, to.c1, 0, from.c1.length);
            }
            if (from.c2 != null) {
                System.arraycopy(from.c2, 0, to.c2, 0, from.c2.length);
            }
        }
        step = saved.step();
    }

    private static void copy(float[] from, float[] to) {
        if (from != null) {
            System.arraycopy(from, 0, to, 0, from.length);
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
