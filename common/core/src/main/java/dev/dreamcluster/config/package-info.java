/**
 * Training configuration: EveryDream2's {@code train.json}, {@code optimizer.json} and command-line
 * flags resolved once, by {@link dev.dreamcluster.config.ConfigResolver}, into immutable records with
 * the provenance of every value. The rules are {@code shared/spec/optimizer-config.md}.
 */
package dev.dreamcluster.config;
