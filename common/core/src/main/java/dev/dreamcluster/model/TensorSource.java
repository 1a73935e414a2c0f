package dev.dreamcluster.model;

import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.ldm.LdmCheckpoint;
import dev.dreamcluster.safetensors.SafetensorsFile;
import dev.dreamcluster.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;

/**
 * Where a model's weights come from, by component and diffusers name, as float32: a diffusers folder
 * (one safetensors per component) or a single LDM-layout .safetensors converted on the fly. Every
 * tensor is checked against the configs when its component is first read.
 */
public interface TensorSource {
    float[] read(Component c, ParamSpec p);

    /** The weights at {@code path} (what {@link DiffusersFolder#read} read the configs of). */
    static TensorSource open(Path path, DiffusersFolder layout) {
        if (Files.isRegularFile(path)) {
            return LdmCheckpoint.open(path);
        }
        return diffusers(layout);
    }

    static TensorSource diffusers(DiffusersFolder folder) {
        Map<Component, SafetensorsFile> files = new EnumMap<>(Component.class);
        Map<Component, Map<String, TensorInfo>> checked = new EnumMap<>(Component.class);
        return (c, p) -> {
            SafetensorsFile f = files.computeIfAbsent(c, k -> SafetensorsFile.open(DiffusersFolder.weightsFile(folder.dir(), k)));
            Map<String, TensorInfo> names = checked.computeIfAbsent(c, k -> folder.checkedTensors(k, f));
            return f.readFloats(names.get(p.name()).name());
        };
    }
}
