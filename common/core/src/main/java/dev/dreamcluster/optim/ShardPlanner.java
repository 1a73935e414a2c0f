package dev.dreamcluster.optim;

import dev.dreamcluster.optim.kernel.QuantMap;
import java.util.ArrayList;
import java.util.List;

/**
 * Range arithmetic for ZeRO-1 sharding: the trainable tensors, in canonical order, form one virtual
 * flat array of T elements; rank r owns about [r*T/W, (r+1)*T/W). Each cut moves to the nearest
 * legal point: a tensor boundary or a multiple of 256 from a tensor's start. Cuts stay in order, so
 * ranks get contiguous, disjoint ranges (possibly empty for tiny models and many ranks).
 */
public final class ShardPlanner {
    /** A tensor to be sharded: its name and element count. */
    public record Tensor(String name, long numel) {}

    private ShardPlanner() {}

    /** The slices each of {@code world} ranks owns, index = rank. */
    public static List<List<TensorSlice>> plan(List<Tensor> tensors, int world) {
        if (world < 1) {
            throw new IllegalArgumentException("world size must be >= 1: " + world);
        }
        long total = 0;
        long[] starts = new long[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            starts[i] = total;
            total += tensors.get(i).numel();
        }
        long[] cuts = new long[world + 1];
        cuts[world] = total;
        for (int r = 1; r < world; r++) {
            long ideal = Math.round((double) total * r / world);
            cuts[r] = Math.max(cuts[r - 1], legalCut(tensors, starts, ideal));
        }
        List<List<TensorSlice>> out = new ArrayList<>(world);
        for (int r = 0; r < world; r++) {
            out.add(slicesBetween(tensors, starts, cuts[r], cuts[r + 1]));
        }
        return out;
    }

    /** The legal cut nearest to {@code pos} (ties toward the lower one). */
    static long legalCut(List<Tensor> tensors, long[] starts, long pos) {
        for (int i = 0; i < tensors.size(); i++) {
            long s = starts[i];
            long e = s + tensors.get(i).numel();
            if (pos >= s && pos <= e) {
                long off = pos - s;
                long down = s + (off / QuantMap.BLOCK) * QuantMap.BLOCK;
                long up = Math.min(e, down + QuantMap.BLOCK);
                return (pos - down <= up - pos) ? down : up;
            }
        }
        return pos;
    }

    /** The pieces of tensors that fall in the flat range [from, to). */
    static List<TensorSlice> slicesBetween(List<Tensor> tensors, long[] starts, long from, long to) {
        List<TensorSlice> out = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            long s = Math.max(from, starts[i]);
            long e = Math.min(to, starts[i] + t.numel());
            if (s < e) {
                out.add(new TensorSlice(t.name(), t.numel(), s - starts[i], Math.toIntExact(e - s)));
            }
        }
        return out;
    }
}
