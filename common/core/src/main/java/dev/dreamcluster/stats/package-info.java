/**
 * Summary statistics the benchmarks and the workers' time lines share ({@link dev.dreamcluster.stats.Stats}):
 * one definition of the median that every printed "median [min-max]" uses.
 */
package dev.dreamcluster.stats;
