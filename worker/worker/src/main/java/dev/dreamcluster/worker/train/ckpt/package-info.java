/**
 * What a run leaves behind and continues from: checkpoints (model, the optimizer state gathered from
 * every rank's shard, trainer_state.json) written by rank 0 under a temporary name and renamed, the
 * final model, the EMA copy, pruning, and the checks a resume makes.
 */
package dev.dreamcluster.worker.train.ckpt;
