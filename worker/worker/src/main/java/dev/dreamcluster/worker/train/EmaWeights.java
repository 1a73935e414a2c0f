package dev.dreamcluster.worker.train;

import dev.dreamcluster.config.TrainFeatures;
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
final class EmaWeights {
    private static final Logger LOG = LoggerFactory.getLogger(EmaWeights.class);

    private final FlatParams unet;
    private final FlatParams te;
    private final float[] unetEma;
    private final float[] teEma;
    private final float decay;
    private final int interval;

    private EmaWeights(FlatParams unet, FlatParams te, float decay, int interval) {
        this.unet = unet;
        this.te = te;
        this.unetEma = unet.params.clone();
        this.teEma = te.params.clone();
        this.decay = decay;
        this.interval = interval;
    }

    /** The EMA of this run on rank 0 (null when EMA is off or on other ranks), resumed from {@code resume}. */
    static EmaWeights create(TrainFeatures f, int totalSteps, FlatParams unet, FlatParams te, int rank, Path resume) {
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
    void afterStep(int step) {
        if (step % interval != 0) {
            return;
        }
        update(unetEma, unet.params);
        update(teEma, te.params);
    }

    private void update(float[] ema, float[] params) {
        float keep = 1f - decay;
        for (int i = 0; i < ema.length; i++) {
            ema[i] = ema[i] * decay + params[i] * keep;
        }
    }

    /** The EMA values of a trainable tensor, or null for a frozen one. */
    float[] values(Component c, String name) {
        FlatParams f = c == Component.UNET ? unet : c == Component.TEXT_ENCODER ? te : null;
        if (f == null) {
            return null;
        }
        int i = f.names.indexOf(name);
        if (i < 0) {
            return null;
        }
        float[] v = new float[f.sizes[i]];
        System.arraycopy(c == Component.UNET ? unetEma : teEma, f.offsets[i], v, 0, f.sizes[i]);
        return v;
    }

    private void load(Path dir) {
        Map<Component, FlatParams> parts = new HashMap<>(Map.of(Component.UNET, unet, Component.TEXT_ENCODER, te));
        for (Map.Entry<Component, FlatParams> p : parts.entrySet()) {
            FlatParams f = p.getValue();
            float[] dst = p.getKey() == Component.UNET ? unetEma : teEma;
            SafetensorsFile file = SafetensorsFile.open(DiffusersFolder.weightsFile(dir, p.getKey()));
            for (int i = 0; i < f.names.size(); i++) {
                file.readFloats(f.names.get(i), dst, f.offsets[i]);
            }
        }
    }
}
