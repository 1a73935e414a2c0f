/** The diffusion process of training: DDPM noise schedule, forward noising and training targets. */
package dev.dreamcluster.diffusion;
