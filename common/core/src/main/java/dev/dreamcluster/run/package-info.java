/**
 * How a run ends when it must not go on: {@link dev.dreamcluster.run.TrainingHalted} (exit status 3,
 * one line), as opposed to bad input ({@code config.ConfigError}, exit 2) and node loss (an elastic
 * shrink).
 */
package dev.dreamcluster.run;
