/**
 * EveryDream2's sample-image settings ({@code sample_prompts}: a .txt of prompts, one per line, or a
 * .json with prompts, negative prompts, seeds, sizes, cfgs, scheduler and steps), read into records
 * that the worker's sampler runs. No model code here.
 */
package dev.dreamcluster.sample;
