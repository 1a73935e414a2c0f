/**
 * Watching a run: the coordinator node's read-only HTTP server ({@link dev.dreamcluster.monitoring.MonitoringServer}:
 * Akka Management's health and members routes, the status API, metrics.jsonl rows, server-sent events,
 * Prometheus text, sample images and the dashboard from this jar) and the redrawn terminal status block
 * ({@link dev.dreamcluster.monitoring.TerminalView}). Both fold the TrainingEvent topic into a
 * {@link dev.dreamcluster.monitoring.RunStatus}; neither talks to the Coordinator actor.
 */
package dev.dreamcluster.monitoring;
