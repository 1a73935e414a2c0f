package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.ComputeDevice;
import dev.dreamcluster.device.Libtorch;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * {@code --device}, {@code --libtorch} and {@code --collective} (train and worker). A GPU needs the
 * CUDA libtorch 2.7.1+cu128 (the distribution carries the CPU one): {@link #apply()} checks it and
 * sets PYTORCH_LIBRARY_PATH / PYTORCH_VERSION / PYTORCH_FLAVOR as system properties before DJL loads
 * (DJL reads them from the environment or the properties); local worker JVMs get them too.
 */
final class DeviceOptions {
    @Option(names = "--device", paramLabel = "D", description = "cpu, gpu:N or auto (default: train.json's device, else cpu)")
    String device;

    @Option(names = "--libtorch", paramLabel = "DIR",
            description = "torch/lib of a PyTorch 2.7.1+cu128 wheel (default: $PYTORCH_LIBRARY_PATH); needed for a GPU")
    Path libtorch;

    @Option(names = "--collective", paramLabel = "K", description = "auto (NCCL when every worker is on a GPU, else the TCP ring), ring or nccl")
    String collective;

    @Option(names = "--optimizer_threads", paramLabel = "N",
            description = "threads of this node's optimizer step (default: one per core; the result is the same for any count)")
    int optimizerThreads;

    @Option(names = "--overlap", paramLabel = "on|off",
            description = "run the ring's collectives on a communication thread, overlapped with host work (default: on; same numbers)")
    String overlap = "on";

    @Option(names = "--capacity", paramLabel = "W[,W..]|auto",
            description = "relative speed for cutting each global batch between workers (worker: one value; train --workers N: "
                    + "one per local worker), or auto: measured on each generation's first steps (default: even cut)")
    String capacity;

    @Option(names = "--state_on", paramLabel = "host|device",
            description = "where the fp32 masters, gradients and optimizer state live (default: device on a GPU, host on a CPU)")
    String stateOn;

    /** The PYTORCH_* settings applied to this JVM (empty on the CPU path). */
    private final Map<String, String> applied = new LinkedHashMap<>();

    /**
     * Validates the flags and, for a GPU (or auto with a libtorch given), points DJL at the CUDA
     * libtorch. Call before anything touches DJL.
     *
     * @throws ConfigError one line: a bad value, a missing or mismatched libtorch, nccl on a CPU
     */
    DeviceOptions apply() {
        if (optimizerThreads < 0 || optimizerThreads > 4096) {
            throw ConfigError.invalid("--optimizer_threads", Integer.toString(optimizerThreads), "1..4096, or 0 for one per core");
        }
        if (!overlap.equals("on") && !overlap.equals("off")) {
            throw ConfigError.invalid("--overlap", overlap, "on or off");
        }
        if (stateOn != null && !stateOn.equals("host") && !stateOn.equals("device")) {
            throw ConfigError.invalid("--state_on", stateOn, "host or device");
        }
        ComputeDevice d = device == null ? null : ComputeDevice.parse(device, "--device");
        CollectiveKind k = collective == null ? null : CollectiveKind.parse(collective, "--collective");
        if (k == CollectiveKind.NCCL && (d == null || !d.isGpu() && !d.auto())) {
            throw ConfigError.invalid("--collective", "nccl", "ring or auto with --device " + (d == null ? "cpu" : d)
                    + ": NCCL needs GPU workers (--device gpu:N)");
        }
        if (d != null && d.isGpu()) {
            applied.putAll(Libtorch.forGpu(libtorch, System.getenv(), d.toString()));
        } else if (libtorch != null) {
            applied.putAll(Libtorch.settings(libtorch, "--libtorch"));
        }
        applied.forEach(System::setProperty);
        return this;
    }

    /** This node's compute settings: the run's (the plan's {@code compute}) with this node's flags. */
    dev.dreamcluster.worker.train.ComputeConfig compute(com.fasterxml.jackson.databind.node.ObjectNode runCompute) {
        return dev.dreamcluster.worker.train.ComputeConfig.fromRun(runCompute, overrides()).withNodeSettings(optimizerThreads,
                overlap.equals("on")).withCapacity(capacities(1)[0]).withStateOnDevice(stateOnDevice());
    }

    /** --state_on as a ComputeConfig value (null: the device's default). */
    Boolean stateOnDevice() {
        return stateOn == null ? null : stateOn.equals("device");
    }

    /**
     * --capacity for {@code workers} local workers: one value each (a single value or auto applies to
     * all); 0 when not given, {@link dev.dreamcluster.worker.train.ComputeConfig#MEASURE} for auto.
     */
    double[] capacities(int workers) {
        double[] c = new double[workers];
        if (capacity == null) {
            return c;
        }
        if (capacity.equals("auto")) {
            java.util.Arrays.fill(c, dev.dreamcluster.worker.train.ComputeConfig.MEASURE);
            return c;
        }
        String[] parts = capacity.split(",", -1);
        if (parts.length != 1 && parts.length != workers) {
            throw ConfigError.invalid("--capacity", capacity, "auto, one value, or " + workers + " comma-separated values (one per worker)");
        }
        for (int i = 0; i < workers; i++) {
            String p = parts[parts.length == 1 ? 0 : i].trim();
            double v;
            try {
                v = Double.parseDouble(p);
            } catch (NumberFormatException e) {
                throw ConfigError.invalid("--capacity", capacity, "auto, or relative speeds > 0 such as 1,2");
            }
            if (!(v > 0) || Double.isInfinite(v)) {
                throw ConfigError.invalid("--capacity", capacity, "auto, or relative speeds > 0 such as 1,2");
            }
            c[i] = v;
        }
        return c;
    }

    /** Overrides for train.json keys (null: not given). */
    Map<String, Object> overrides() {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("device", device);
        o.put("collective", collective);
        return o;
    }

    /** JVM flags for a local worker JVM (the PYTORCH_* settings). */
    List<String> jvmFlags() {
        List<String> f = new ArrayList<>();
        applied.forEach((k, v) -> f.add("-D" + k + "=" + v));
        return f;
    }

    /** Worker flags for local worker {@code rank}: gpu:N becomes gpu:(N + rank), one GPU per worker. */
    List<String> workerFlags(int rank, int workers) {
        List<String> f = new ArrayList<>();
        if (device != null) {
            ComputeDevice d = ComputeDevice.parse(device, "--device");
            f.add("--device");
            f.add(d.isGpu() ? ComputeDevice.gpu(d.gpuIndex() + rank).toString() : d.toString());
        }
        if (collective != null) {
            f.add("--collective");
            f.add(collective);
        }
        f.add("--overlap");
        f.add(overlap);
        if (stateOn != null) {
            f.add("--state_on");
            f.add(stateOn);
        }
        if (capacity != null) {
            f.add("--capacity");
            f.add(capacity.equals("auto") ? "auto" : Double.toString(capacities(workers)[rank]));
        }
        return f;
    }
}
