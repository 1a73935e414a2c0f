package dev.dreamcluster.device;

import dev.dreamcluster.config.ConfigError;

/**
 * The device a worker's model, step and loss run on: {@code cpu}, {@code gpu:N} (CUDA device N of
 * this process) or {@code auto} (gpu:0 when libtorch sees a CUDA device, else cpu; resolved by the
 * worker once its libtorch is loaded).
 *
 * @param gpuIndex -1 for the CPU, else the CUDA device index
 */
public record ComputeDevice(boolean auto, int gpuIndex) {
    public static final ComputeDevice CPU = new ComputeDevice(false, -1);
    public static final ComputeDevice AUTO = new ComputeDevice(true, -1);
    static final String ALLOWED = "cpu, gpu:N with N a CUDA device index >= 0, or auto";

    /** @param where the flag or file and key, for the error message */
    public static ComputeDevice parse(String text, String where) {
        String t = text == null ? "" : text.trim();
        if (t.equals("cpu")) {
            return CPU;
        }
        if (t.equals("auto")) {
            return AUTO;
        }
        if (t.startsWith("gpu:") || t.startsWith("cuda:")) {
            String n = t.substring(t.indexOf(':') + 1);
            if (n.matches("[0-9]{1,3}")) {
                return gpu(Integer.parseInt(n));
            }
        }
        throw ConfigError.invalid(where, "\"" + text + "\"", ALLOWED);
    }

    public static ComputeDevice gpu(int index) {
        if (index < 0) {
            throw new IllegalArgumentException("CUDA device index " + index + " < 0");
        }
        return new ComputeDevice(false, index);
    }

    public boolean isGpu() {
        return gpuIndex >= 0;
    }

    /** {@code auto} resolved: gpu:0 when {@code cudaDevices} > 0, else cpu; a concrete device is returned as is. */
    public ComputeDevice resolve(int cudaDevices) {
        return auto ? (cudaDevices > 0 ? gpu(0) : CPU) : this;
    }

    @Override
    public String toString() {
        return auto ? "auto" : isGpu() ? "gpu:" + gpuIndex : "cpu";
    }
}
