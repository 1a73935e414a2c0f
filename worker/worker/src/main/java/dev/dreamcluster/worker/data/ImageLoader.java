package dev.dreamcluster.worker.data;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import javax.imageio.ImageIO;

/**
 * Decodes an image, centre-crops it to the bucket's aspect ratio, resizes it (bilinear) and writes
 * it as float CHW in [-1, 1] into a batch buffer.
 */
public final class ImageLoader {
    private ImageLoader() {}

    /** Writes {@code item} resized to (w, h) into {@code out[off .. off + 3*h*w)}, channels first. */
    public static void load(ImageItem item, int w, int h, float[] out, int off) {
        load(item, w, h, out, off, false);
    }

    /** As {@link #load(ImageItem, int, int, float[], int)}, mirrored left-right when {@code flip}. */
    public static void load(ImageItem item, int w, int h, float[] out, int off, boolean flip) {
        BufferedImage src;
        try {
            src = ImageIO.read(item.path().toFile());
        } catch (IOException | RuntimeException e) {
            // a file whose header read fine at scan time but whose pixels do not (truncated, damaged)
            throw new ConfigError("data_root: image " + Json.quote(item.path().toString()) + " cannot be decoded ("
                    + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())
                    + "); allowed: complete jpg, png or webp files (re-save or remove it)");
        }
        if (src == null) {
            throw new ConfigError("data_root: image " + Json.quote(item.path().toString())
                    + " has no decoder; allowed: jpg, png or webp files");
        }
        double target = (double) w / h;
        int cw = src.getWidth();
        int ch = src.getHeight();
        if ((double) cw / ch > target) {
            cw = (int) Math.round(ch * target);
        } else {
            ch = (int) Math.round(cw / target);
        }
        int x0 = (src.getWidth() - cw) / 2;
        int y0 = (src.getHeight() - ch) / 2;
        BufferedImage dst = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = dst.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.drawImage(src, 0, 0, w, h, x0, y0, x0 + cw, y0 + ch, null);
        } finally {
            g.dispose();
        }
        int plane = w * h;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = dst.getRGB(flip ? w - 1 - x : x, y);
                int i = y * w + x;
                out[off + i] = ((rgb >> 16) & 0xFF) / 127.5f - 1f;
                out[off + plane + i] = ((rgb >> 8) & 0xFF) / 127.5f - 1f;
                out[off + 2 * plane + i] = (rgb & 0xFF) / 127.5f - 1f;
            }
        }
    }
}
