/**
 * NCCL for GPU workers through JavaCPP's CUDA presets ({@code org.bytedeco:cuda}): {@link Nccl}
 * probes whether CUDA and libnccl.so.2 load here (a catchable UnsatisfiedLinkError becomes one
 * line), {@link NcclCollective} is the GPU data plane behind core's {@code Collective} (host
 * staging) plus in-place device-buffer operations for the GPU ZeRO step, and {@link GpuCheck} is the
 * device check {@code bin/gpu-check} runs on a GPU machine.
 */
package dev.dreamcluster.nccl;
