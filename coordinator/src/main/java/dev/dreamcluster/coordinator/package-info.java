/**
 * The coordinator: a cluster-singleton actor that resolves the run's configuration, builds the
 * parameter plan and shard assignment, and drives workers through training steps and checkpoints.
 * Depends on {@code common} only (no DJL). The actor itself arrives with the cluster-runtime issue.
 */
package dev.dreamcluster.coordinator;
