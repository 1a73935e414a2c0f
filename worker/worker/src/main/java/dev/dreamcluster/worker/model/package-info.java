/**
 * Stable Diffusion on DJL's PyTorch engine, written functionally over named parameters: {@link
 * dev.dreamcluster.worker.model.ClipTextModel}, {@link dev.dreamcluster.worker.model.UNetModel} and
 * {@link dev.dreamcluster.worker.model.VaeModel} read their tensors from a {@link
 * dev.dreamcluster.worker.model.ModelWeights} map keyed by the Hugging Face / diffusers names, never by
 * DJL's generated parameter ids. The models are cut into segments (blocks, layers) run through a
 * {@link dev.dreamcluster.worker.model.Recompute}: directly, freeing each block's intermediates when it
 * returns, or with gradient checkpointing, recomputing each block in backward.
 */
package dev.dreamcluster.worker.model;
