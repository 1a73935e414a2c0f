/**
 * One optimizer step: {@link dev.dreamcluster.worker.train.step.DiffusionStep} (the EveryDream2
 * diffusion math of each micro-batch, forward and backward) and
 * {@link dev.dreamcluster.worker.train.step.TrainStep} (the gradients' route through the parameter
 * groups, the global norm, clipping, the updates), timed by
 * {@link dev.dreamcluster.worker.train.step.Phases}.
 */
package dev.dreamcluster.worker.train.step;
