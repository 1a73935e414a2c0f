package dev.dreamcluster.worker.train.ckpt;

import dev.dreamcluster.collective.Collective;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.config.ResolvedConfigJson;
import dev.dreamcluster.config.ResolvedTrainingConfig;
import dev.dreamcluster.config.TrainConfig;
import dev.dreamcluster.freeze.Component;
import dev.dreamcluster.io.AtomicFiles;
import dev.dreamcluster.model.DiffusersFolder;
import dev.dreamcluster.optim.OptimizerState;
import dev.dreamcluster.optim.OptimizerStateFile;
import dev.dreamcluster.safetensors.DType;
import dev.dreamcluster.worker.model.Tensors;
import dev.dreamcluster.worker.train.bundle.ModelBundle;
import dev.dreamcluster.worker.train.data.DataCursor;
import dev.dreamcluster.worker.train.grad.ParamGroup;
import java.nio.file.Path;
import java.util.List;

/**
 * Checkpoints and saved models. A checkpoint is {@code dir}/model/ (diffusers, fp32 so resume is
 * exact), optimizer/{unet,text_encoder}/ (the whole state: every rank's shard gathered to rank 0 over
 * the collective) and trainer_state.json (the position and both resolved configs, written last).
 * Only rank 0 writes, under a temporary name, each file fsynced, then renamed: the checkpoint is
 * complete on rank 0's node alone, so workers need no shared file system, and a crash never leaves a
 * half checkpoint under the real name.
 */
public final class Checkpointer {
    private final TrainConfig cfg;
    private final ResolvedTrainingConfig opt;
    private final ModelBundle bundle;
    private final List<ParamGroup> groups;
    private final Collective collective;
    private final EmaWeights ema;

    public Checkpointer(TrainConfig cfg, ResolvedTrainingConfig opt, ModelBundle bundle, List<ParamGroup> groups, Collective collective,
            EmaWeights ema) {
        this.cfg = cfg;
        this.opt = opt;
        this.bundle = bundle;
        this.groups = groups;
        this.collective = collective;
        this.ema = ema;
    }

    /** Loads each group's optimizer state from {@code checkpoint} (written by any number of workers). */
    public void resume(Path checkpoint) {
        for (ParamGroup g : groups) {
            Resume.loadOptimizer(g, checkpoint, g.component().folder());
        }
    }

    /**
     * Writes checkpoint {@code dir} at {@code step} with the cut of the batches it was trained with
     * (and {@code runControl}, null for none); every rank must call it (the optimizer gather is a collective).
     */
    public void checkpoint(Path dir, int step, DataCursor data, dev.dreamcluster.worker.train.data.BatchSplit split,
            com.fasterxml.jackson.databind.node.ObjectNode runControl) {
        dev.dreamcluster.worker.train.RankAgreement.checkWeights(collective, groups, step); // a checkpoint of one model, not of N
        OptimizerState[] states = new OptimizerState[groups.size()];
        for (int i = 0; i < states.length; i++) {
            states[i] = OptimizerGather.toRoot(groups.get(i), collective, 0);
        }
        if (rank() == 0) {
            CheckpointWriter.commit(dir, tmp -> {
                for (int i = 0; i < states.length; i++) {
                    if (states[i] != null) {
                        OptimizerStateFile.write(states[i], tmp.resolve("optimizer").resolve(groups.get(i).component().folder()));
                    }
                }
                saveModel(tmp.resolve("model"), DType.F32);
                var json = new TrainerState(step, data.epoch(), data.batchIndex(), data.microStep(), split.counts()).toJson(cfg,
                        ResolvedConfigJson.write(opt)).put("world_size", collective == null ? 1 : collective.worldSize());
                if (runControl != null) {
                    json.set("run_control", runControl); // what users' control requests set: a resume draws the same samples
                }
                byte[] state = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(json);
                AtomicFiles.write(tmp.resolve(TrainerState.FILE), state);
            });
            CheckpointPruner.prune(dir.toAbsolutePath(), cfg.keepLastNCheckpoints());
        }
        if (collective != null && collective.worldSize() > 1) {
            collective.barrier(); // returns on every rank once the checkpoint is committed
        }
    }

    /** The current weights as a diffusers folder (tokenizer and every config key copied from the source model); EMA beside it. */
    public void saveModel(Path dir, DType dtype) {
        DiffusersFolder.writeTrained(dir, bundle.folder, dtype, (c, p) -> masterValues(c, p.name()));
        if (ema != null) { // EveryDream2 saves the EMA model as <path>_ema beside the model
            DiffusersFolder.writeTrained(dir.resolveSibling(dir.getFileName() + "_ema"), bundle.folder, dtype, (c, p) -> {
                float[] v = ema.values(c, p.name());
                return v != null ? v : masterValues(c, p.name());
            });
        }
    }

    /** fp32 master values: trainable tensors from the flat buffers (the model may hold fp16 casts), frozen ones as loaded. */
    public float[] masterValues(Component c, String name) {
        for (ParamGroup g : groups) {
            if (g.component() == c) {
                float[] v = g.valuesOf(name);
                if (v != null) {
                    return v;
                }
            }
        }
        return Tensors.read(bundle.masters(c).get(name));
    }

    private int rank() {
        return collective == null ? 0 : collective.rank();
    }
}
