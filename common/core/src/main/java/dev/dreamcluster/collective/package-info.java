/**
 * Collectives over flat float32 buffers: the {@link dev.dreamcluster.collective.Collective} interface
 * (what the training step calls) and {@link dev.dreamcluster.collective.RingCollective}, a TCP ring over
 * NIO socket channels for CPU runs and tests, whose connections prove a per-run secret ({@code
 * RingWire}: the format and its fuzzed decoders; {@code RingHandshake}: the time-bounded connect).
 * Akka carries control only; gradients and weights move here. An NCCL implementation of the same interface is planned for GPUs.
 */
package dev.dreamcluster.collective;
