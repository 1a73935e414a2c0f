/**
 * {@link dev.dreamcluster.layout.ParamLayout}: the one description of a run's flat parameter
 * buffers (deterministic names, shapes, trainable masks, offsets and ZeRO-1 shard cuts), from which
 * the workers' buffers, the optimizers' slices and the plan hash are all derived.
 */
package dev.dreamcluster.layout;
