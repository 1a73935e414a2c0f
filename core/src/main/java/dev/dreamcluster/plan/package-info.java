/**
 * The parameter plan every node of a run must agree on: names, shapes, trainable masks and shard
 * assignment, summarised by a hash that the coordinator sends and each worker recomputes.
 */
package dev.dreamcluster.plan;
