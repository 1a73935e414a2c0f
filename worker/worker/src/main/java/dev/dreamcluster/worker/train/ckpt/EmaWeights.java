package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.config.TrainFeatures;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * EveryDream2's EMA of the trained weights (train.py update_ema): every ema_update_interval optimizer
 * steps, {@code ema = ema * decay + param * (1 - decay)} in float32 over every trainable tensor
 * (frozen tensors are constant, so their EMA is themselves). Kept on rank 0 only, in host memory
 * (one more copy of the trainable parameters); saved as a diffusers folder {@code <model>_ema} beside
 * each saved model, which is also how a resumed run gets it back bit for bit.
 */
public final class EmaWeights {
    private static final Logger LOG = LoggerFactory.getLogger(EmaWeights.class);

    private final ParamGroup unet;
    private final ParamGroup te;
    private final float[] unetEma;
    private final float[] teEma;
    private final float decay;
    private final int interval;

    private EmaWeights(ParamGroup unet, ParamGroup te, float decay, int interval) {
        this.unet = unet;
        this.te = te;
        this.unetEma = current(unet).clone();
        this.teEma = current(te).clone();
        this.decay = decay;
        this.interval = interval;
    }

    /** The EMA of this run on rank 0 (null when EMA is off or on other ranks), resumed from {@code resume}. */
    public static EmaWeights create(TrainFeatures f, int totalSteps, ParamGroup unet, ParamGroup te, int rank, Path resume) {
        if (!f.emaEnabled() || rank != 0) {
            return null;
        }
        EmaWeights e = new EmaWeights(unet, te, (float) f.emaDecay(totalSteps), f.emaUpdateInterval());
        LOG.info("EMA on: decay {} every {} optimizer steps", e.decay, e.interval);
        if (resume != null) {
            Path dir = resume.resolve("model_ema");
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException(resume + " has no model_ema/ (it was written without EMA), so EMA cannot resume");
            }
            e.load(dir);
        }
        return e;
    }

    /** After optimizer step {@code step} (1-based): an update every interval steps. */
    public void afterStep(int step) {
        if (step % interval != 0) {
            return;
        }
        update(unetEma, current(unet));
        update(teEma, current(te));
    }

    /**
     * The group's current flat fp32 parameters: the host's array itself (read only), or a copy down
     * from the device (one transfer per EMA update, every ema_update_interval steps, on rank 0).
     */
    private static float[] current(ParamGroup g) {
        float[] host = g.store().hostParams();
        if (host != null) {
            return host;
        }
        float[] all = new float[g.layout().total()];
        for (int i = 0; i < g.names().size(); i++) {
            float[] v = g.store().values(i);
            System.arraycopy(v, 0, all, g.layout().offsets()[i], v.length);
        }
        return all;
    }

    private void update(float[] ema, float[] params) {
        float keep = 1f - decay;
        for (int i = 0; i < ema.length; i++) {
            ema[i] = ema[i] * decay + params[i] * keep;
        }
    }

    /** The EMA values of a trainable tensor, or null for a frozen one. */
    public float[] values(Component c, String name) {
        ParamGroup g = c == Component.UNET ? unet : c == Component.TEXT_ENCODER ? te : null;
        if (g == null) {
            return null;
        }
        int i = g.names().indexOf(name);
        if (i < 0) {
            return null;
        }
        int size = Math.toIntExact(g.layout().trainable().get(i).numel());
        float[] v = new float[size];
        System.arraycopy(c == Component.UNET ? unetEma : teEma, g.layout().offsets()[i], v, 0, size);
        return v;
    }

    private void load(Path dir) {
        Map<Component, ParamGroup> parts = new HashMap<>(Map.of(Component.UNET, unet, Component.TEXT_ENCODER, te));
        for (Map.Entry<Component, ParamGroup> p : parts.entrySet()) {
            ParamGroup g = p.getValue();
            float[] dst = p.getKey() == Component.UNET ? unetEma : teEma;
            SafetensorsFile file = SafetensorsFile.open(DiffusersFolder.weightsFile(dir, p.getKey()));
            for (int i = 0; i < g.names().size(); i++) {
                file.readFloats(g.names().get(i), dst, g.layout().offsets()[i]);
            }
        }
    }
}
