package dev.dreamcluster.worker.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.ParamSpec;
import dev.dreamcluster.model.TensorSource;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * One component's parameters as float32 NDArrays keyed by their diffusers names, in manifest order.
 * Trainable tensors carry a gradient; frozen ones never enter autograd. Owns its NDManager.
 */
public final class ModelWeights implements AutoCloseable {
    private final Component component;
    private final NDManager manager;
    private final Map<String, NDArray> tensors;
    private final List<ParamSpec> manifest;

    private ModelWeights(Component component, NDManager manager, Map<String, NDArray> tensors, List<ParamSpec> manifest) {
        this.component = component;
        this.manager = manager;
        this.tensors = tensors;
        this.manifest = manifest;
    }

    /** Loads {@code component} from a diffusers folder, checked against its config. */
    public static ModelWeights load(NDManager parent, DiffusersFolder folder, Component component, Device device,
            Predicate<String> trainable) {
        return load(parent, folder, TensorSource.diffusers(folder), component, device, trainable);
    }

    /** Loads {@code component} of {@code layout} from {@code source} (a diffusers folder or a single LDM file). */
    public static ModelWeights load(NDManager parent, DiffusersFolder layout, TensorSource source, Component component, Device device,
            Predicate<String> trainable) {
        NDManager m = parent.newSubManager(device);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        List<ParamSpec> manifest = layout.manifest(component);
        for (ParamSpec p : manifest) {
            float[] values = source.read(component, p);
            NDArray a = Tensors.of(m, values, new Shape(p.shape()));
            a.setName(p.name());
            if (trainable.test(p.name())) {
                a.setRequiresGradient(true);
            }
            tensors.put(p.name(), a);
        }
        return new ModelWeights(component, m, tensors, manifest);
    }

    /**
     * {@code component}'s tensors of {@code layout}, zero-filled: enough to trace the shapes a forward
     * pass meets (the doctor's check of a preset) without weights on disk. Nothing trains on them.
     */
    public static ModelWeights zeros(NDManager parent, DiffusersFolder layout, Component component, Device device) {
        NDManager m = parent.newSubManager(device);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        List<ParamSpec> manifest = layout.manifest(component);
        for (ParamSpec p : manifest) {
            NDArray a = m.zeros(new Shape(p.shape()));
            a.setName(p.name());
            tensors.put(p.name(), a);
        }
        return new ModelWeights(component, m, tensors, manifest);
    }

    /**
     * A compute replica: casts of these tensors to {@code dtype} on {@code device} in a new sub-manager
     * of {@code parent}, with gradients on the {@code trainable} ones (the masters stay as they are).
     */
    public ModelWeights replica(NDManager parent, Device device, ai.djl.ndarray.types.DataType dtype, Predicate<String> trainable) {
        return replica(parent, device, dtype, trainable, false);
    }

    /**
     * The same; with {@code omitTrainable} the trainable tensors are not copied at all: the caller
     * {@link #rebind}s them (a device store's views of its flat fp32 parameters), so the device never
     * holds a second copy of them.
     */
    public ModelWeights replica(NDManager parent, Device device, ai.djl.ndarray.types.DataType dtype, Predicate<String> trainable,
            boolean omitTrainable) {
        NDManager m = parent.newSubManager(device);
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : tensors.entrySet()) {
            if (omitTrainable && trainable.test(e.getKey())) {
                out.put(e.getKey(), null);
                continue;
            }
            NDArray a;
            try (NDArray cast = e.getValue().toType(dtype, true)) {
                a = cast.toDevice(device, true);
            }
            a.attach(m);
            a.setName(e.getKey());
            if (trainable.test(e.getKey())) {
                a.setRequiresGradient(true);
            }
            out.put(e.getKey(), a);
        }
        return new ModelWeights(component, m, out, manifest);
    }

    /**
     * Makes {@code tensor} the one the models read for {@code name} (a trainable tensor that lives in a
     * flat buffer elsewhere; it must carry a gradient and have the manifest's shape).
     */
    public void rebind(String name, NDArray tensor) {
        if (!tensors.containsKey(name)) {
            throw new IllegalArgumentException(component.folder() + " has no parameter " + name);
        }
        NDArray old = tensors.get(name);
        if (old != null && !old.getShape().equals(tensor.getShape())) {
            throw new IllegalArgumentException(name + ": shape " + tensor.getShape() + ", the model's is " + old.getShape());
        }
        if (old != null && old.hasGradient() && old != tensor) {
            old.setRequiresGradient(false); // the old tensor stays a frozen copy nobody reads
        }
        tensors.put(name, tensor);
    }

    public NDArray get(String name) {
        NDArray a = tensors.get(name);
        if (a == null) {
            throw new IllegalArgumentException(component.folder() + " has no parameter " + name);
        }
        return a;
    }

    /** Null when the parameter does not exist (optional layers such as conv_shortcut). */
    NDArray opt(String name) {
        return tensors.get(name);
    }

    public Component component() {
        return component;
    }

    public List<ParamSpec> manifest() {
        return manifest;
    }

    public Map<String, NDArray> tensors() {
        return tensors;
    }

    public boolean isTrainable(String name) {
        return get(name).hasGradient();
    }

    /** Whether any tensor whose name starts with {@code prefix} records a gradient. */
    public boolean anyTrainable(String prefix) {
        for (Map.Entry<String, NDArray> e : tensors.entrySet()) {
            if (e.getKey().startsWith(prefix) && e.getValue() != null && e.getValue().hasGradient()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() {
        manager.close();
    }
}
