package dev.dreamcluster.worker.train.grad.device;

import dev.dreamcluster.optim.TensorSlice;
import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the 256-element blocks of a shard's 8-bit slices live: their rows in the [rows, 256] state
 * tensors and their elements in the flat buffers (offsets relative to the shard's start).
 *
 * <p>Blocks restart at every slice, as in the Java {@link dev.dreamcluster.optim.Optimizer}: a slice's
 * full blocks are followed by at most one partial block (its tail). Full blocks whose elements follow
 * each other in the flat buffer form runs (consecutive 8-bit slices whose lengths are multiples of 256
 * merge). A run of at least {@code fastMinBlocks} blocks is updated through a [rows, 256] view of the
 * flat buffers ("fast" chunks, in place); every other block (partial ones, short runs) is gathered into
 * a padded [rows, 256] tensor and scattered back ("gather" chunks). Rows are numbered fast runs
 * first, then the gathered blocks, each in shard order; chunks hold at most {@code chunkBlocks} rows.
 */
final class BlockLayout {
    static final int B = QuantMap.BLOCK;

    /**
     * A piece of work. Fast: rows [row0, row0 + rows) are the elements [src0, src0 + 256 * rows).
     * Gather: row j holds the {@code valid[j]} elements from {@code lo + src[j]}; the chunk's elements lie
     * in [lo, hi).
     */
    record Chunk(long row0, int rows, boolean fast, long src0, long lo, long hi, long[] src, long[] valid) {}

    /** Per slice of the shard (-1 where the slice is not 8-bit or has no such block). */
    final long[] fullRow;
    final int[] fullBlocks;
    final long[] partialRow;
    final long rows;
    final List<Chunk> chunks = new ArrayList<>();

    BlockLayout(List<TensorSlice> slices, long[] offsets, boolean[] q8, long chunkBlocks, int fastMinBlocks) {
        int n = slices.size();
        fullRow = new long[n];
        fullBlocks = new int[n];
        partialRow = new long[n];
        java.util.Arrays.fill(fullRow, -1);
        java.util.Arrays.fill(partialRow, -1);
        // runs of contiguous full blocks: {first slice, last slice, src, blocks}
        List<long[]> runs = new ArrayList<>();
        long[] open = null;
        for (int i = 0; i < n; i++) {
            if (!q8[i]) {
                open = null;
                continue;
            }
            int len = slices.get(i).length();
            fullBlocks[i] = len / B;
            if (fullBlocks[i] > 0) {
                if (open != null && open[2] + open[3] * B == offsets[i]) {
                    open[1] = i;
                    open[3] += fullBlocks[i];
                } else {
                    open = new long[] {i, i, offsets[i], fullBlocks[i]};
                    runs.add(open);
                }
            }
            if (len % B != 0) {
                open = null; // the partial tail ends the run
            }
        }
        long row = 0;
        boolean[] fastSlice = new boolean[n];
        for (long[] r : runs) {
            if (r[3] < fastMinBlocks) {
                continue;
            }
            for (int i = (int) r[0]; i <= r[1]; i++) {
                if (q8[i] && fullBlocks[i] > 0) {
                    fastSlice[i] = true;
                    fullRow[i] = row + (offsets[i] - r[2]) / B;
                }
            }
            for (long done = 0; done < r[3]; done += chunkBlocks) {
                int k = (int) Math.min(chunkBlocks, r[3] - done);
                chunks.add(new Chunk(row + done, k, true, r[2] + done * B, 0, 0, null, null));
            }
            row += r[3];
        }
        // gathered blocks, in shard order
        List<long[]> gathered = new ArrayList<>(); // {src, valid}
        long gatherRow0 = row;
        for (int i = 0; i < n; i++) {
            if (!q8[i]) {
                continue;
            }
            int len = slices.get(i).length();
            if (!fastSlice[i] && fullBlocks[i] > 0) {
                fullRow[i] = row;
                for (int b = 0; b < fullBlocks[i]; b++) {
                    gathered.add(new long[] {offsets[i] + (long) b * B, B});
                    row++;
                }
            }
            if (len % B != 0) {
                partialRow[i] = row;
                gathered.add(new long[] {offsets[i] + (long) fullBlocks[i] * B, len % B});
                row++;
            }
        }
        for (int done = 0; done < gathered.size(); done += (int) Math.min(chunkBlocks, Integer.MAX_VALUE)) {
            int k = (int) Math.min(chunkBlocks, gathered.size() - done);
            long lo = Long.MAX_VALUE;
            long hi = Long.MIN_VALUE;
            for (int j = 0; j < k; j++) {
                long[] g = gathered.get(done + j);
                lo = Math.min(lo, g[0]);
                hi = Math.max(hi, g[0] + g[1]);
            }
            long[] src = new long[k];
            long[] valid = new long[k];
            for (int j = 0; j < k; j++) {
                long[] g = gathered.get(done + j);
                src[j] = g[0] - lo;
                valid[j] = g[1];
            }
            chunks.add(new Chunk(gatherRow0 + done, k, false, 0, lo, hi, src, valid));
        }
        this.rows = row;
    }
}
