/**
 * Durable files and the output folder: {@link dev.dreamcluster.io.AtomicFiles} (temporary name,
 * fsync, rename, fsync of the folder: the only way DreamCluster writes anything a crash could tear)
 * and {@link dev.dreamcluster.io.OutputLock} (one run per output folder).
 */
package dev.dreamcluster.io;
