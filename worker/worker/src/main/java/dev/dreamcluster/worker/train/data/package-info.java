/**
 * Where the data stands: the training and validation split, the seeded per-epoch batch plans, and
 * the cursor (epoch, batch, micro-step) that checkpoints record so a resumed run continues exactly.
 */
package dev.dreamcluster.worker.train.data;
