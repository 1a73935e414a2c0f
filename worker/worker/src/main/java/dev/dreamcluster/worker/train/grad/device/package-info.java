/**
 * The optimizers on the device: {@link dev.dreamcluster.worker.train.grad.device.DeviceOptimizer}
 * runs AdamW, AdamW8bit, Lion and Lion8bit as DJL/libtorch operations on whatever device holds a
 * component's flat fp32 buffers (a GPU in production, DJL's CPU engine in CI: one implementation),
 * updating a rank's ZeRO-1 shard {@code [from, from + length)} of the flat parameters in place, with
 * its state (fp32 moments, or uint8 codes and per-256-block absmax) on the device too. Results equal
 * the Java kernels of {@link dev.dreamcluster.optim} bit for bit on the CPU engine.
 *
 * <p>Passes over each element of the shard per step (elementwise libtorch ops; each reads one or two
 * tensors and writes one):
 *
 * <pre>
 *   AdamW      15 (+1 with weight decay; +1 copy when beta1 <= 0.5)   reads p g m v, writes p m v
 *              (the correctly rounded sqrt is 3: fp64 and back)
 *   Lion        9 (+1 with weight decay)                               reads p g m,   writes p m
 *   AdamW8bit  69 (+2 with weight decay): dequantise 3+3, moments 7, finite mask and resets 4,
 *              p 7, absmax 7, quantise 24 (m) + 12 (v), store 2
 *   Lion8bit   41 (+1): dequantise 3, p 6, m 3, absmax 4, quantise 24, store 1
 *   gathered 8-bit blocks (partial blocks, short runs): +8 (index 2, mask 1, gathers 2, g mask 1,
 *              scatter 2), +2 or +1 keeping the padding codes; 8-bit optimizers' tensors under 4096
 *              elements: bitsandbytes' fp32 kernels, 15 (Adam) or 9 (Lion) (+1 decay), +3 for their
 *              gather and scatter
 * </pre>
 *
 * What leaves the device per step: nothing (no value is read back, no branch depends on the data);
 * each step uploads its handful of 4-byte scalars. {@link
 * dev.dreamcluster.worker.train.grad.device.DeviceOptimizer#state()} copies the state to the host for
 * checkpoints, {@link dev.dreamcluster.worker.train.grad.device.DeviceCopy} moves flat buffers of any
 * size (past 2 GiB) in chunks of at most 256 MiB.
 */
package dev.dreamcluster.worker.train.grad.device;
