/**
 * Numeric kernels: static, allocation-free loops over flat float32 slices. Each reproduces one
 * reference implementation operation by operation in binary32 (no FMA, IEEE division and sqrt), so
 * results are bit-identical to the reference vectors and independent of how work is split.
 *
 * <p>Every kernel has a scalar form and, when the JVM runs with {@code jdk.incubator.vector}
 * ({@link dev.dreamcluster.optim.kernel.Simd}), a vector form ({@code VectorKernels}) that performs
 * the same operations lane by lane; a test holds the two to identical bits (NaN payloads aside).
 * The 8-bit kernels work one 256-element block at a time while it is in L1: dequantize (gathers
 * from the maps) and update in one pass, then re-quantize by a gathered search table.
 */
package dev.dreamcluster.optim.kernel;
