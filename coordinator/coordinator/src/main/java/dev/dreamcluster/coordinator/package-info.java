/**
 * The coordinator: a cluster-singleton actor that discovers workers through the Receptionist, assigns
 * ranks and the parameter plan (with its hash), starts each generation, turns step reports into
 * TrainingEvents, and replans when a worker is lost or spares wait. {@link Coordinator} and
 * {@link Generation} are its phases over an immutable {@link RunState}, {@link WorkerGate} decides which
 * worker may say what, and {@link RunFolder} writes metrics.jsonl on the blocking-I/O dispatcher. No DJL.
 */
package dev.dreamcluster.coordinator;
