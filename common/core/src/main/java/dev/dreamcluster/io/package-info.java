/**
 * Files a run writes: the one metrics.jsonl format ({@link dev.dreamcluster.io.StepMetrics},
 * {@link dev.dreamcluster.io.MetricsLog}), shared by single-process runs and the coordinator; durable
 * files ({@link dev.dreamcluster.io.AtomicFiles}: temporary name, fsync, rename, fsync of the folder:
 * the only way DreamCluster writes anything a crash could tear) and {@link dev.dreamcluster.io.OutputLock}
 * (one run per output folder).
 */
package dev.dreamcluster.io;
