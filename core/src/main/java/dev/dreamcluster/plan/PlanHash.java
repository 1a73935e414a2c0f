package dev.dreamcluster.plan;

import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.freeze.FreezePlan;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.optim.ShardPlanner;
import dev.dreamcluster.optim.TensorSlice;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * SHA-256 over the canonical parameter plan of a run:
 *
 * <pre>
 *   world=N
 *   for each component (unet, text_encoder, vae), in manifest order:
 *     component/name [d0, d1, ...] trainable|frozen
 *   for each trainable component, for each rank: shard r: name[start,end) ...
 * </pre>
 *
 * Two nodes with the same model architecture, resolved freezing and world size get the same hash;
 * any difference in a name, shape, mask or shard cut changes it, and a worker refuses to start.
 */
public final class PlanHash {
    private PlanHash() {}

    public static String of(DiffusersFolder model, FreezePlan freeze, int world) {
        StringBuilder b = new StringBuilder("world=").append(world).append('\n');
        List<List<ShardPlanner.Tensor>> trainable = new ArrayList<>();
        for (Component c : Component.values()) {
            List<ShardPlanner.Tensor> t = new ArrayList<>();
            for (ParamSpec p : model.manifest(c)) {
                boolean train = freeze.isTrainable(c, p.name());
                b.append(c.folder()).append('/').append(p.name()).append(' ').append(Arrays.toString(p.shape()))
                        .append(train ? " trainable" : " frozen").append('\n');
                if (train) {
                    t.add(new ShardPlanner.Tensor(p.name(), p.numel()));
                }
            }
            trainable.add(t);
        }
        for (int c = 0; c < trainable.size(); c++) {
            List<List<TensorSlice>> plan = ShardPlanner.plan(trainable.get(c), world);
            for (int r = 0; r < world; r++) {
                b.append(Component.values()[c].folder()).append(" shard ").append(r).append(':');
                for (TensorSlice s : plan.get(r)) {
                    b.append(' ').append(s.name()).append('[').append(s.start()).append(',').append(s.end()).append(')');
                }
                b.append('\n');
            }
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
