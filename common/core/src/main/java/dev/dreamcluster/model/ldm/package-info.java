/**
 * Single-file Stable Diffusion checkpoints in the original LDM/CompVis layout (what A1111 and
 * ComfyUI load): {@link dev.dreamcluster.model.ldm.LdmLayout} maps every diffusers tensor of a
 * model to its LDM name and shape (SD1.x: {@code cond_stage_model.transformer.*}, SD2.x's OpenCLIP:
 * {@code cond_stage_model.model.*} with fused q/k/v), {@link dev.dreamcluster.model.ldm.LdmCheckpoint}
 * reads such a {@code .safetensors} as a diffusers model in memory and writes one.
 */
package dev.dreamcluster.model.ldm;
