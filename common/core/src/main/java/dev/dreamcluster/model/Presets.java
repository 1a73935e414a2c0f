package dev.dreamcluster.model;

import java.util.List;
import java.util.Locale;

/**
 * Built-in model architectures: {@code sd15} and {@code sd21} are the real Stable Diffusion 1.5 and
 * 2.1 configs; {@code tiny} is a few-MB model with the same block structure for tests and demos;
 * {@code medium} is SD1.5's shape scaled down for benchmarks.
 */
public enum Presets {
    TINY(new UNetConfig(4, 4, 16, List.of(32, 64), 1, List.of("CrossAttnDownBlock2D", "DownBlock2D"),
            List.of("UpBlock2D", "CrossAttnUpBlock2D"), List.of(4, 4), 32, false, 8, 1e-5, true, 0),
            new ClipTextConfig(1024, 32, 4, 4, 64, 77, "quick_gelu", 1e-5),
            new VaeConfig(3, 3, 4, List.of(16, 32, 32), 1, 8, 64, 0.18215)),
    /**
     * The tiny example's model (examples/tiny): a VAE of four levels (64 px images to 8x8 latents; the
     * example ships it trained on the shapes dataset, examples/tiny/shapes-vae), TINY's text encoder,
     * and a UNet of two cross-attention levels over those 8x8 latents.
     */
    TINY_SHAPES(new UNetConfig(4, 4, 8, List.of(32, 64), 1, List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            List.of("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), List.of(4, 4), 32, false, 8, 1e-5, true, 0),
            new ClipTextConfig(1024, 32, 4, 4, 64, 77, "quick_gelu", 1e-5),
            new VaeConfig(3, 3, 4, List.of(16, 16, 32, 32), 1, 2, 64, 0.75597)),
    /**
     * SD1.5's shape at a fifth of its width: the same four levels, two layers per block, cross-attention
     * in the first three, 8 heads; 192 px images (24x24 latents). 35M UNet parameters, sized so a CPU
     * step of batch 4 takes about a second on 2 cores (1.2 s measured): the benchmark size between tiny
     * and sd15.
     */
    MEDIUM(new UNetConfig(4, 4, 24, List.of(64, 128, 256, 256), 2,
            List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), List.of(8, 8, 8, 8),
            256, false, 32, 1e-5, true, 0),
            new ClipTextConfig(4096, 256, 4, 4, 1024, 77, "quick_gelu", 1e-5),
            new VaeConfig(3, 3, 4, List.of(32, 64, 128, 128), 1, 32, 192, 0.18215)),
    SD15(new UNetConfig(4, 4, 64, List.of(320, 640, 1280, 1280), 2,
            List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), List.of(8, 8, 8, 8),
            768, false, 32, 1e-5, true, 0),
            new ClipTextConfig(49408, 768, 12, 12, 3072, 77, "quick_gelu", 1e-5),
            new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, 512, 0.18215)),
    SD21(new UNetConfig(4, 4, 96, List.of(320, 640, 1280, 1280), 2,
            List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), List.of(5, 10, 20, 20),
            1024, true, 32, 1e-5, true, 0),
            new ClipTextConfig(49408, 1024, 23, 16, 4096, 77, "gelu", 1e-5),
            new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, 768, 0.18215));

    public final UNetConfig unet;
    public final ClipTextConfig textEncoder;
    public final VaeConfig vae;

    Presets(UNetConfig unet, ClipTextConfig textEncoder, VaeConfig vae) {
        this.unet = unet;
        this.textEncoder = textEncoder;
        this.vae = vae;
    }

    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The SD2 tokenizer pads with "!" (id 0); SD1's with its end-of-text token. */
    public boolean padsWithExclamation() {
        return this == SD21;
    }
}
