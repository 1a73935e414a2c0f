/**
 * The safetensors format in plain Java (no DJL): header parsing, fp32/fp16/bf16 tensors to and from
 * float32, and atomic writing. DJL's NDList codec is limited to 2 GiB per file, which an fp32 SD UNet
 * (3.4 GB) exceeds; this reader maps one tensor at a time.
 */
package dev.dreamcluster.safetensors;
