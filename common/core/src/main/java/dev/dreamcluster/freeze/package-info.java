/**
 * Trainable masks: which named parameters of UNet, text encoder and VAE a run may change. Every node
 * derives the same mask from the same resolved config and parameter names.
 */
package dev.dreamcluster.freeze;
