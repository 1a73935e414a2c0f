package dev.dreamcluster.worker.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.diffusion.DdpmScheduler;
import dev.dreamcluster.model.ClipTextConfig;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.model.Presets;
import dev.dreamcluster.model.UNetConfig;
import dev.dreamcluster.safetensors.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The model folders the float64 gradient references were recorded from (see
 * src/test/resources/reference/README.md, "Parameter gradients"). Both are written deterministically:
 * the same bytes on every run, so {@link GradientParityTest} can check their SHA-256 against the
 * recording.
 *
 * <ul>
 *   <li>{@code tiny}: the tiny preset exactly as {@code init-model --preset tiny --seed 1} writes it.
 *   <li>{@code sd2}: an SD2-like tiny model: Linear proj_in/proj_out, a different head count per block
 *       (attention_head_dim [2, 4] at widths [16, 32], as SD2's [5, 10, 20, 20] keeps the head width constant),
 *       upcast_attention true (DreamCluster reads it as inert: its attention runs in fp32), and an
 *       SD2-style text encoder (exact GELU, "!" padding) of width 48, which is the UNet's
 *       cross_attention_dim and differs from every UNet width.
 * </ul>
 *
 * <p>Run {@link #main} with a folder to write both there (the recorder is run on that output).
 */
public final class ReferenceModels {
    private ReferenceModels() {}

    public static final String TINY = "tiny";
    public static final String SD2 = "sd2";
    public static final List<String> NAMES = List.of(TINY, SD2);

    /** SD2-style text encoder: exact GELU, width 48 (4 heads of 12), 3 layers. */
    public static final ClipTextConfig SD2_TEXT_ENCODER = new ClipTextConfig(1024, 48, 3, 4, 96, 77, "gelu", 1e-5);

    /**
     * SD2-like UNet: use_linear_projection, heads [2, 4] per block (head width 8 in both), cross-attention
     * from the 48-wide encoder; half the tiny preset's widths so its recorded gradients stay small.
     */
    public static final UNetConfig SD2_UNET = new UNetConfig(4, 4, 16, List.of(16, 32), 1,
            List.of("CrossAttnDownBlock2D", "DownBlock2D"), List.of("UpBlock2D", "CrossAttnUpBlock2D"), List.of(2, 4),
            SD2_TEXT_ENCODER.hiddenSize(), true, 8, 1e-5, true, 0);

    /** Writes model {@code name} (one of {@link #NAMES}) at {@code dir} and returns {@code dir}. */
    public static Path write(String name, Path dir) {
        switch (name) {
            case TINY -> DiffusersFolder.writeRandom(dir, Presets.TINY, 1, DType.F32);
            case SD2 -> {
                Presets p = Presets.TINY;
                DiffusersFolder.write(dir, SD2_UNET, SD2_TEXT_ENCODER, p.vae,
                        DdpmScheduler.stableDiffusion(DdpmScheduler.Prediction.V_PREDICTION), true, DType.F32,
                        DiffusersFolder.randomInit(3, SD2_UNET, SD2_TEXT_ENCODER, p.vae), null);
                setUpcastAttention(dir);
            }
            default -> throw new IllegalArgumentException("unknown reference model " + name + " (known: " + NAMES + ")");
        }
        return dir;
    }

    /**
     * UNetConfig does not carry upcast_attention (it changes nothing in fp32), so it is added to the
     * written config.json, as SD2's own config has it.
     */
    private static void setUpcastAttention(Path dir) {
        Path f = dir.resolve("unet/config.json");
        try {
            ObjectNode n = (ObjectNode) Json.MAPPER.readTree(f.toFile());
            n.put("upcast_attention", true);
            Files.write(f, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code ReferenceModels OUT_DIR}: writes OUT_DIR/tiny and OUT_DIR/sd2. */
    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: ReferenceModels OUT_DIR");
            System.exit(2);
        }
        Path out = Path.of(args[0]);
        for (String name : NAMES) {
            System.out.println("wrote " + write(name, out.resolve(name)).toAbsolutePath());
        }
    }
}
