/**
 * The model bundle of a training node: the diffusers folder's configs, the fp32 master weights, the
 * replicas the models compute with (device and dtype), the models themselves with their measured
 * operations, the tokenizer and the noise schedule. Built once per run, checked before the first step.
 */
package dev.dreamcluster.worker.train.bundle;
