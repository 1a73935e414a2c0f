/**
 * Sample images during training: {@link dev.dreamcluster.worker.sample.Sampler} (classifier-free
 * guided DDIM or Euler over the DJL UNet, CLIP and VAE), and {@link dev.dreamcluster.worker.sample.RunOutputs},
 * the one per-step hook of the training loops that writes the PNGs under {@code <out>/samples/} and the
 * TensorBoard events (rank 0 only).
 */
package dev.dreamcluster.worker.sample;
