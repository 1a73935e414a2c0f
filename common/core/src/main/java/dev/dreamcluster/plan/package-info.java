/**
 * What every node of a run must agree on: {@link dev.dreamcluster.plan.PlanManifest} (the resolved
 * config, the parameter layout, a digest of every model file and of the dataset manifest) and its
 * SHA-256, the plan hash, which the coordinator sends and each worker recomputes from its own copies.
 */
package dev.dreamcluster.plan;
