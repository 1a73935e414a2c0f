/**
 * Collectives over flat float32 buffers: the {@link dev.dreamcluster.collective.Collective} interface
 * (what the training step calls) and {@link dev.dreamcluster.collective.RingCollective}, a TCP ring over
 * NIO socket channels for CPU runs and tests. Akka carries control only; gradients and weights move
 * here. An NCCL implementation of the same interface is planned for GPUs.
 */
package dev.dreamcluster.collective;
