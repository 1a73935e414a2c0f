/**
 * The one route of a gradient, from libtorch's {@code .grad} to the updated parameters back in the
 * model, for every mode (one process, N ring ranks, a GPU with NCCL):
 *
 * <pre>
 *   model .grad --pull--> flat grads --reduce-scatter--> shard (mean, norm, clip) --update--> flat params
 *   flat params --all-gather--> every rank's flat params --push--> model tensors (compute dtype), .grad zeroed
 * </pre>
 *
 * {@link dev.dreamcluster.worker.train.grad.ParamGroup} is one component (UNet, text encoder) over the
 * run's {@link dev.dreamcluster.layout.ParamLayout} part; its buffers are a
 * {@link dev.dreamcluster.worker.train.grad.FlatStore} ({@link dev.dreamcluster.worker.train.grad.HostStore}:
 * float arrays and the Java kernels); {@link dev.dreamcluster.worker.train.grad.GradSync} moves them
 * between ranks (the TCP ring, chosen once per run). The step
 * ({@code worker.train.step.TrainStep}) loops over the groups.
 */
package dev.dreamcluster.worker.train.grad;
