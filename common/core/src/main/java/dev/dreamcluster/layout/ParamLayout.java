package dev.dreamcluster.layout;

import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.optim.ShardPlanner;
import dev.dreamcluster.optim.TensorSlice;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * How one run lays out its parameters, per component, for a world of {@code world} ranks:
 *
 * <pre>
 *   manifest order (diffusers names)   t0 t1 t2 ... (frozen tensors are listed, never buffered)
 *   flat trainable buffer              [ t0 | t2 | ... ]        tensor i at offset[i], numel[i] elements
 *   shard bounds                       [ rank 0 | rank 1 | ... ] cut only at multiples of 256 in a tensor
 * </pre>
 *
 * Pure arithmetic on names and shapes (no weights): every node derives the same layout from the same
 * model configs, freezing plan and world size, and the plan hash covers {@link #describe}.
 */
public final class ParamLayout {
    /** One component's part of the layout. */
    public record Part(Component component, List<ParamSpec> all, List<ParamSpec> trainable, int[] offsets, int total,
            int[] shardBounds, List<List<TensorSlice>> shards) {

        /** Elements [shardBounds[r], shardBounds[r+1]) of the flat buffer belong to rank r. */
        public int shardStart(int rank) {
            return shardBounds[rank];
        }

        public int shardLength(int rank) {
            return shardBounds[rank + 1] - shardBounds[rank];
        }

        /** Whole-tensor slices of the flat buffer, in buffer order. */
        public List<TensorSlice> wholeSlices() {
            List<TensorSlice> s = new ArrayList<>();
            for (ParamSpec p : trainable) {
                s.add(TensorSlice.whole(p.name(), Math.toIntExact(p.numel())));
            }
            return s;
        }
    }

    private final int world;
    private final FreezePlan freeze;
    private final Map<Component, Part> parts = new EnumMap<>(Component.class);

    private ParamLayout(int world, FreezePlan freeze) {
        this.world = world;
        this.freeze = freeze;
    }

    public static ParamLayout of(DiffusersFolder model, FreezePlan freeze, int world) {
        ParamLayout l = new ParamLayout(world, freeze);
        for (Component c : Component.values()) {
            List<ParamSpec> all = model.manifest(c);
            List<ParamSpec> trainable = new ArrayList<>();
            for (ParamSpec p : all) {
                if (freeze.isTrainable(c, p.name())) {
                    trainable.add(p);
                }
            }
            int[] offsets = new int[trainable.size()];
            long total = 0;
            List<ShardPlanner.Tensor> tensors = new ArrayList<>();
            for (int i = 0; i < trainable.size(); i++) {
                offsets[i] = Math.toIntExact(total);
                total += trainable.get(i).numel();
                tensors.add(new ShardPlanner.Tensor(trainable.get(i).name(), trainable.get(i).numel()));
            }
            // one float[] per component: Java arrays hold at most 2^31-1 elements (SD UNet: 0.86e9)
            int flat = Math.toIntExact(total);
            List<List<TensorSlice>> shards = ShardPlanner.plan(tensors, world);
            int[] bounds = new int[world + 1];
            for (int r = 0; r < world; r++) {
                bounds[r + 1] = bounds[r] + shards.get(r).stream().mapToInt(TensorSlice::length).sum();
            }
            l.parts.put(c, new Part(c, List.copyOf(all), List.copyOf(trainable), offsets, flat, bounds, shards));
        }
        return l;
    }

    public int world() {
        return world;
    }

    public FreezePlan freeze() {
        return freeze;
    }

    public Part part(Component c) {
        return parts.get(c);
    }

    /**
     * The canonical text of one component's layout, for the plan hash:
     *
     * <pre>
     *   name [d0, d1] f32 trainable|frozen      one line per tensor, manifest order
     *   shard r: name[start,end) ...            one line per rank
     * </pre>
     */
    public String describe(Component c) {
        Part p = parts.get(c);
        StringBuilder b = new StringBuilder("world=").append(world).append('\n');
        for (ParamSpec s : p.all()) {
            b.append(s.name()).append(' ').append(s.shapeString()).append(" f32 ")
                    .append(freeze.isTrainable(c, s.name()) ? "trainable" : "frozen").append('\n');
        }
        for (int r = 0; r < world; r++) {
            b.append("shard ").append(r).append(':');
            for (TensorSlice s : p.shards().get(r)) {
                b.append(' ').append(s.name()).append('[').append(s.start()).append(',').append(s.end()).append(')');
            }
            b.append('\n');
        }
        return b.toString();
    }
}
