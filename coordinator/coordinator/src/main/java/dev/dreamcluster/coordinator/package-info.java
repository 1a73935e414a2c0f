/**
 * The coordinator: a cluster-singleton actor that discovers workers through the Receptionist,
 * assigns ranks and the parameter plan (with its hash), starts the run, turns step reports into
 * TrainingEvents and metrics.jsonl, and stops the run when a worker is lost. No DJL here.
 */
package dev.dreamcluster.coordinator;
