/**
 * Optimizers over flat float32 parameter shards: AdamW (torch.optim.AdamW), AdamW8bit and Lion8bit
 * (bitsandbytes blockwise 8-bit), Lion (lion-pytorch). Classes here keep state and per-step scalars;
 * the arithmetic is in {@link dev.dreamcluster.optim.kernel}. Rules: {@code shared/spec/optimizers.md}.
 */
package dev.dreamcluster.optim;
