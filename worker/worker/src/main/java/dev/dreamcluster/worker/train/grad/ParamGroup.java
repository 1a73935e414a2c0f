package dev.dreamcluster.worker.train.grad;

import ai.djl.ndarray.NDArray;
import dev.dreamcluster.config.ComponentConfig;
import dev.dreamcluster.config.LrSchedule;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.layout.ParamLayout;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.optim.OptimizerHyper;
import dev.dreamcluster.worker.model.ModelWeights;
import dev.dreamcluster.worker.model.Tensors;
import java.util.ArrayList;
import java.util.List;

/**
 * One component (UNet or text encoder) as ZeRO-1 sees it: its trainable tensors in the order and at
 * the offsets of the run's {@link ParamLayout} part, this rank's shard of them, the optimizer
 * settings and lr schedule, and the {@link FlatStore} that holds the flat buffers. A component that
 * trains nothing (disabled, or every tensor frozen) is an empty group: every operation is a no-op.
 */
public final class ParamGroup implements AutoCloseable {
    private final Component component;
    private final ParamLayout.Part layout;
    private final List<String> names = new ArrayList<>();
    private final OptimizerHyper hyper;
    private final LrSchedule lr;
    private final int rank;
    private final FlatStore store;

    private ParamGroup(Component component, ParamLayout.Part layout, ComponentConfig config, LrSchedule lr, int rank, FlatStore store) {
        this.component = component;
        this.layout = layout;
        this.hyper = config == null ? null : OptimizerHyper.of(config);
        this.lr = lr;
        this.rank = rank;
        this.store = store;
        for (ParamSpec p : layout.trainable()) {
            names.add(p.name());
        }
    }

    /**
     * The group on host buffers with the Java optimizer kernels.
     *
     * @param compute the tensors the model computes with (their .grad is read, their values refreshed)
     * @param masters the fp32 weights the flat parameters start from (the same object on a CPU in fp32)
     * @param config the component's optimizer, or null when it is not trained
     * @param threads optimizer threads (the result is the same for any count)
     */
    public static ParamGroup onHost(ParamLayout.Part layout, ModelWeights compute, ModelWeights masters, ComponentConfig config,
            int totalSteps, int rank, int threads) {
        List<NDArray> tensors = new ArrayList<>();
        List<float[]> initial = new ArrayList<>();
        long loaded = compute.manifest().stream().filter(p -> compute.isTrainable(p.name())).count();
        if (loaded != layout.trainable().size()) {
            throw new IllegalStateException(layout.component() + ": the model has " + loaded + " trainable tensors, the layout "
                    + layout.trainable().size());
        }
        for (ParamSpec p : layout.trainable()) {
            if (!compute.isTrainable(p.name())) {
                throw new IllegalStateException(layout.component() + ": the layout's trainable tensor " + p.name() + " is frozen in the model");
            }
            tensors.add(compute.get(p.name()));
            initial.add(Tensors.read(masters.get(p.name())));
        }
        FlatStore store = new HostStore(tensors, initial, layout.offsets(), layout.total(), layout.shardStart(rank),
                layout.shardStart(rank) + layout.shardLength(rank), config == null ? null : OptimizerHyper.of(config),
                layout.shards().get(rank), threads);
        return new ParamGroup(layout.component(), layout, config, config == null ? null : config.schedule(totalSteps), rank, store);
    }

    /**
     * The group on the compute device: fp32 masters, gradients and optimizer state live there
     * ({@link DeviceStore}); the model's trainable tensors become views of the flat parameters.
     *
     * @param compute the model's weights on the device; its trainable entries are rebound to the views
     * @param masters the fp32 values the flat parameters start from (host)
     */
    public static ParamGroup onDevice(ParamLayout.Part layout, ModelWeights compute, ModelWeights masters, ComponentConfig config,
            int totalSteps, int rank, ai.djl.ndarray.NDManager deviceManager) {
        List<float[]> initial = new ArrayList<>();
        List<ai.djl.ndarray.types.Shape> shapes = new ArrayList<>();
        for (ParamSpec p : layout.trainable()) {
            initial.add(Tensors.read(masters.get(p.name())));
            shapes.add(new ai.djl.ndarray.types.Shape(p.shape()));
        }
        DeviceStore store = new DeviceStore(initial, shapes, layout.offsets(), layout.total(), layout.shardStart(rank),
                layout.shardStart(rank) + layout.shardLength(rank), config == null ? null : OptimizerHyper.of(config),
                layout.shards().get(rank), deviceManager);
        for (int i = 0; i < layout.trainable().size(); i++) {
            compute.rebind(layout.trainable().get(i).name(), store.tensors().get(i));
        }
        return new ParamGroup(layout.component(), layout, config, config == null ? null : config.schedule(totalSteps), rank, store);
    }

    public Component component() {
        return component;
    }

    public ParamLayout.Part layout() {
        return layout;
    }

    public FlatStore store() {
        return store;
    }

    /** The trainable tensors' names, in layout order. */
    public List<String> names() {
        return names;
    }

    public boolean isEmpty() {
        return names.isEmpty();
    }

    /** The optimizer settings (null: the component is not trained). */
    public OptimizerHyper hyper() {
        return hyper;
    }

    /** The lr of optimizer step {@code step} (0-based; 0 for a component that is not trained). */
    public double lrAt(int step) {
        return lr == null ? 0 : lr.lrAt(step);
    }

    public LrSchedule schedule() {
        return lr;
    }

    /** Flat-buffer bounds of every rank's shard (the same on every rank). */
    public int[] shardBounds() {
        return layout.shardBounds();
    }

    public int rank() {
        return rank;
    }

    /** The current master values of trainable tensor {@code name}, or null when it is not trainable here. */
    public float[] valuesOf(String name) {
        int i = names.indexOf(name);
        return i < 0 ? null : store.values(i);
    }

    @Override
    public void close() {
        store.close();
    }
}
