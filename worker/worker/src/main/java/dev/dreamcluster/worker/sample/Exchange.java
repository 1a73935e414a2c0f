package dev.dreamcluster.worker.sample;

import dev.dreamcluster.collective.Collective;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;

/**
 * Small things over the data plane, which carries float32 only: text (one byte per float, exact) and
 * sample images (24-bit RGB per float, exact below 2^24) with their seed (two 15-bit halves). Every
 * rank calls each method at the same point; the sizes are sent first when the receivers cannot know
 * them.
 */
final class Exchange {
    private Exchange() {}

    /** {@code parts} from {@code root} to every rank (the others pass anything; they get root's). */
    static String[] broadcastStrings(Collective c, int root, String... parts) {
        String[] out = new String[parts.length];
        for (int k = 0; k < parts.length; k++) {
            byte[] b = parts[k].getBytes(StandardCharsets.UTF_8);
            float[] len = {b.length};
            c.broadcast(len, 1, root);
            int n = (int) len[0];
            float[] f = new float[Math.max(1, n)];
            if (c.rank() == root) {
                for (int i = 0; i < n; i++) {
                    f[i] = b[i] & 0xff;
                }
            }
            if (n > 0) {
                c.broadcast(f, n, root);
            }
            byte[] got = new byte[n];
            for (int i = 0; i < n; i++) {
                got[i] = (byte) f[i];
            }
            out[k] = new String(got, StandardCharsets.UTF_8);
        }
        return out;
    }

    record Image(BufferedImage image, long seed) {}

    /**
     * The {@code width} x {@code height} image drawn on {@code owner} (null elsewhere) and its seed,
     * to every rank. The seeds drawn for a -1 seed are below 2^30.
     */
    static Image broadcastImage(Collective c, int owner, BufferedImage image, int width, int height, long seed) {
        int n = width * height;
        float[] f = new float[n + 2];
        if (c.rank() == owner) {
            int[] rgb = image.getRGB(0, 0, width, height, null, 0, width);
            for (int i = 0; i < n; i++) {
                f[i] = rgb[i] & 0xffffff;
            }
            f[n] = seed & 0x7fff;
            f[n + 1] = (seed >>> 15) & 0x7fff;
        }
        c.broadcast(f, f.length, owner);
        BufferedImage out = image;
        if (c.rank() != owner) {
            int[] rgb = new int[n];
            for (int i = 0; i < n; i++) {
                rgb[i] = (int) f[i];
            }
            out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
            out.setRGB(0, 0, width, height, rgb, 0, width);
        }
        long s = c.rank() == owner ? seed : ((long) f[n + 1] << 15) | (long) f[n];
        return new Image(out, s);
    }
}
