/**
 * A worker node: the {@link dev.dreamcluster.worker.node.Worker} actor (lifecycle and messages only)
 * and the compute thread it starts, which owns DJL, the training step and the ring collective.
 */
package dev.dreamcluster.worker.node;
