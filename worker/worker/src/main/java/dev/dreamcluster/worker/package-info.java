/**
 * The worker: one per GPU or CPU process, holding a model replica on DJL's PyTorch engine and its
 * shard of the optimizer state. The model and training step arrive with the Stable Diffusion issue.
 */
package dev.dreamcluster.worker;
