/**
 * Where a worker computes and how its ranks talk: the {@code --device} and {@code --collective}
 * choices, the libtorch a GPU worker needs, the NCCL unique id carried in the run plan and the
 * padded layout NCCL's equal-count collectives need. Pure Java: the CUDA code lives in the
 * {@code nccl} module and the worker.
 */
package dev.dreamcluster.device;
