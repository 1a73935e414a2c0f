/**
 * Stable Diffusion model descriptions without weights: the diffusers configs of the UNet, the CLIP
 * text encoder and the VAE as records, and the exact list of parameter names and shapes each one
 * has ({@link dev.dreamcluster.model.ParamManifest}), in diffusers' state_dict order. The coordinator
 * plans shards from these; the worker's DJL model registers its tensors under the same names.
 */
package dev.dreamcluster.model;
