/**
 * Files a run writes: the one metrics.jsonl format ({@link dev.dreamcluster.io.StepMetrics},
 * {@link dev.dreamcluster.io.MetricsLog}), shared by single-process runs and the coordinator.
 */
package dev.dreamcluster.io;
