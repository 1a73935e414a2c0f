package dev.dreamcluster.collective;

/**
 * Collective operations among {@link #worldSize()} ranks over flat float32 buffers, in place. Every
 * rank calls the same operations in the same order with the same sizes.
 *
 * <p>{@code bounds} (length worldSize + 1, ascending, bounds[0] = 0) assigns rank r the segment
 * [bounds[r], bounds[r+1]) of the buffer: ZeRO shards are uneven, so segments are explicit.
 */
public interface Collective extends AutoCloseable {
    int rank();

    int worldSize();

    /** After it, rank r's segment holds the element-wise sum over ranks; other elements are unspecified. */
    void reduceScatter(float[] data, int[] bounds);

    /** After it, every rank holds every rank's segment. */
    void allGather(float[] data, int[] bounds);

    /** Element-wise sum over ranks of data[0, len), on every rank. */
    void allReduce(float[] data, int len);

    /** Copies root's data[0, len) to every rank. */
    void broadcast(float[] data, int len, int root);

    /** Returns when every rank has called it. */
    void barrier();

    /**
     * The bound on each of the following operations until the next call (a rank that waits longer
     * for a peer fails, naming {@code what}): the training loop widens it while rank 0 validates or
     * writes a checkpoint and narrows it to a multiple of the measured step time otherwise.
     */
    void setTimeout(java.time.Duration timeout, String what);

    /** Frees sockets and threads; after a failure it also unblocks peers (their next operation fails). */
    @Override
    void close();
}
