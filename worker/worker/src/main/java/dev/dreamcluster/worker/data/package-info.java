/**
 * EveryDream-format data: a folder tree of captioned images, per-folder multipliers, aspect-ratio
 * buckets and seeded, bucket-homogeneous batches. Pure Java (ImageIO, with WebP), no DJL.
 */
package dev.dreamcluster.worker.data;
