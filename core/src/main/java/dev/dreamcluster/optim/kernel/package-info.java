/**
 * Numeric kernels: static, allocation-free loops over flat float32 slices. Each reproduces one
 * reference implementation operation by operation in binary32 (no FMA, IEEE division and sqrt), so
 * results are bit-identical to the reference vectors and independent of how work is split.
 */
package dev.dreamcluster.optim.kernel;
