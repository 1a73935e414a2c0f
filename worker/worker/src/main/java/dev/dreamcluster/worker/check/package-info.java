/**
 * The startup self-check: every operation the run's models will execute with gradients is measured,
 * at the run's real shapes, against the same operation in float64 on the same device (outputs and
 * every input gradient). Convolutions get the first {@link dev.dreamcluster.worker.model.ConvForm}
 * that is exact there; any other operation that is not exact stops the node with one line naming the
 * op, the shape, the error and the library (exit 3). {@code dreamcluster doctor} prints the same
 * measurements as a table.
 */
package dev.dreamcluster.worker.check;
