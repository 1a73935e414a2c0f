/**
 * Stable Diffusion on DJL's PyTorch engine, written functionally over named parameters: {@link
 * dev.dreamcluster.worker.model.ClipTextModel}, {@link dev.dreamcluster.worker.model.UNetModel} and
 * {@link dev.dreamcluster.worker.model.VaeModel} read their tensors from a {@link
 * dev.dreamcluster.worker.model.ModelWeights} map keyed by the Hugging Face / diffusers names, never by
 * DJL's generated parameter ids.
 */
package dev.dreamcluster.worker.model;
