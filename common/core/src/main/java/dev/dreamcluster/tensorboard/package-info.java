/**
 * TensorBoard event files without TensorFlow: {@link dev.dreamcluster.tensorboard.EventFileWriter}
 * writes {@code events.out.tfevents.<seconds>.<host>} as TFRecords (length, masked CRC32C of the
 * length, an {@code Event} protobuf, masked CRC32C of the data) with scalar and PNG image summaries;
 * {@link dev.dreamcluster.tensorboard.Proto} is the few protobuf wire-format writes that needs.
 */
package dev.dreamcluster.tensorboard;
