/**
 * Training on one process: {@link dev.dreamcluster.config.TrainConfig} (train.json's training
 * keys), {@link dev.dreamcluster.worker.train.Trainer} (the step, top to bottom), flat parameter
 * buffers, metrics, validation and crash-safe checkpoints with exact resume.
 */
package dev.dreamcluster.worker.train;
