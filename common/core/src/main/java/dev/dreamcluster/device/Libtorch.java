package dev.dreamcluster.device;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The libtorch a worker loads instead of the CPU one in the distribution, and the DJL JNI that fits it.
 * DJL 0.36's published JNI ({@code pytorch-jni-2.7.1-0.36.0.jar}: {@code cpu/} and {@code cu128/}) is linked
 * against libtorch 2.7.1's C++ ABI; libtorch 2.10+ lacks symbols it imports (the JVM would die with
 * "symbol lookup error"). So a libtorch is accepted when
 *
 * <ul>
 *   <li>a JNI built for it by {@code bin/gpu-check jni} lies where DJL looks first, {@code <lib>/0.36.0-libdjl_torch.so},
 *       or in DJL's cache ({@code <cache>/pytorch/<version>-<flavor>-linux-x86_64/}), with the stamp
 *       ({@code .built-for}) naming this libtorch's version and build; or</li>
 *   <li>it is 2.7.1 (any CUDA build: the published JNI links libtorch, not the CUDA runtime), which DJL
 *       serves from the jar (flavor {@code cu128} or {@code cpu}).</li>
 * </ul>
 *
 * DJL reads PYTORCH_LIBRARY_PATH, PYTORCH_VERSION and PYTORCH_FLAVOR from the environment first and from
 * system properties only where the environment has none ({@code Utils.getEnvOrSystemProperty} at v0.36.0);
 * {@link #settings} therefore refuses an environment that would point DJL elsewhere than the settings it returns.
 */
public final class Libtorch {
    public static final String DJL_VERSION = "0.36.0";
    /** The file name DJL 0.36 looks for in the libtorch folder and in its cache. */
    public static final String JNI_NAME = DJL_VERSION + "-libdjl_torch.so";
    /** The libtorch version DJL 0.36's published JNI is built for. */
    public static final String VERSION = "2.7.1";
    /** The jar's CUDA JNI folder. */
    public static final String FLAVOR = "cu128";
    public static final String INSTALL = "a PyTorch wheel's torch/lib (pip install torch), then bin/gpu-check jni --libtorch "
            + "<site-packages>/torch/lib to build DJL's JNI for it, or torch==2.7.1 whose JNI DJL ships; "
            + "--libtorch <site-packages>/torch/lib";
    public static final String[] KEYS = {"PYTORCH_LIBRARY_PATH", "PYTORCH_VERSION", "PYTORCH_FLAVOR"};

    private Libtorch() {}

    /** {@link #settings(Path, String, boolean, Map)} for a CUDA libtorch, against this process's environment. */
    public static Map<String, String> settings(Path dir, String where) {
        return settings(dir, where, true, System.getenv());
    }

    /**
     * The settings DJL needs for {@code dir} (PYTORCH_LIBRARY_PATH, PYTORCH_VERSION, PYTORCH_FLAVOR), to be set
     * as system properties before DJL loads.
     *
     * @param where the flag or variable that named dir, for the error message
     * @param needCuda whether a CPU-only libtorch is refused
     * @param env the environment DJL will read first
     * @throws ConfigError one line naming what is wrong and what to do
     */
    public static Map<String, String> settings(Path dir, String where, boolean needCuda, Map<String, String> env) {
        if (!Files.isDirectory(dir)) {
            throw ConfigError.invalid(where, dir.toString(), "a folder holding libtorch.so; none here: " + INSTALL);
        }
        LibtorchProbe p = LibtorchProbe.of(dir);
        if (!p.hasLibtorch()) {
            throw ConfigError.invalid(where, dir.toString(), "a folder holding libtorch.so (this one has none): " + INSTALL);
        }
        if (needCuda && !p.hasCudaLibrary()) {
            throw ConfigError.invalid(where, dir.toString(), "a CUDA libtorch; this one has no libtorch_cuda.so (CPU only): " + INSTALL);
        }
        if (p.version() == null) {
            throw ConfigError.invalid(where, dir.toString(), "a libtorch whose version can be read (../version.py of the wheel or "
                    + "../build-version of the zip; neither is here): " + INSTALL);
        }
        String shown = dir + " (libtorch " + p.version() + ")";
        Map<String, String> s = new LinkedHashMap<>();
        s.put("PYTORCH_LIBRARY_PATH", p.lib().toString());
        String inLib = p.stampMismatch(p.jniInLib());
        if (Files.exists(p.jniInLib())) {
            if (inLib == null || !inLib.isEmpty()) {
                throw ConfigError.invalid(where, shown, "a libtorch whose " + p.jniInLib().getFileName() + " fits it; "
                        + (inLib == null ? "this one has no .built-for stamp (not built by bin/gpu-check jni)" : inLib)
                        + ": rebuild it with bin/gpu-check jni --libtorch " + p.lib());
            }
            s.put("PYTORCH_VERSION", p.baseVersion());
            s.put("PYTORCH_FLAVOR", p.flavor());
            return agree(s, env, where, shown, false);
        }
        Path cached = p.jniInCache(env);
        String inCache = Files.exists(cached) ? p.stampMismatch(cached) : null;
        if (inCache != null && inCache.isEmpty()) {
            s.put("PYTORCH_VERSION", p.baseVersion());
            s.put("PYTORCH_FLAVOR", p.flavor());
            return agree(s, env, where, shown, true);
        }
        if (p.baseVersion().equals(VERSION)) {
            s.put("PYTORCH_VERSION", VERSION);
            s.put("PYTORCH_FLAVOR", p.hasCudaLibrary() ? FLAVOR : "cpu");
            return agree(s, env, where, shown, true);
        }
        throw ConfigError.invalid(where, shown, "libtorch " + VERSION + " (DJL " + DJL_VERSION + "'s published JNI) or one with a JNI "
                + "built for it" + (inCache != null ? " (" + cached + ": " + inCache + ")" : "") + ": run bin/gpu-check jni --libtorch "
                + p.lib() + " (it needs CMake or g++ and libtorch's headers)");
    }

    /**
     * Refuses an environment variable that DJL would read instead of the property {@link #settings} sets.
     * The JNI in the libtorch folder is found whatever PYTORCH_VERSION and PYTORCH_FLAVOR say, so only
     * PYTORCH_LIBRARY_PATH must agree then ({@code byVersion} false).
     */
    private static Map<String, String> agree(Map<String, String> s, Map<String, String> env, String where, String shown,
            boolean byVersion) {
        for (String k : KEYS) {
            String e = env.get(k);
            if (e == null || e.equals(s.get(k)) || !byVersion && !k.equals("PYTORCH_LIBRARY_PATH")) {
                continue;
            }
            if (k.equals("PYTORCH_LIBRARY_PATH") && Path.of(e).toAbsolutePath().normalize().toString().equals(s.get(k))) {
                continue;
            }
            throw ConfigError.invalid(where, shown, "a libtorch that the environment agrees with: DJL reads " + k + "=" + e
                    + " from the environment before the system property (" + s.get(k) + "); unset it or set it to " + s.get(k));
        }
        return s;
    }

    /**
     * The libtorch folder for a GPU worker: {@code flag} (--libtorch) if given, else the
     * PYTORCH_LIBRARY_PATH variable; checked by {@link #settings}.
     *
     * @throws ConfigError when neither names one
     */
    public static Map<String, String> forGpu(Path flag, Map<String, String> env, String device) {
        if (flag != null) {
            return settings(flag, "--libtorch", true, env);
        }
        String e = env.get("PYTORCH_LIBRARY_PATH");
        if (e != null && !e.isBlank()) {
            return settings(Path.of(e), "PYTORCH_LIBRARY_PATH", true, env);
        }
        throw ConfigError.invalid("--device", device, "cpu here: this distribution carries the CPU libtorch only; a GPU needs "
                + "a CUDA libtorch (" + INSTALL + " or set PYTORCH_LIBRARY_PATH)");
    }

    /**
     * {@code name} as DJL reads it: the environment variable, else the system property
     * ({@code ai.djl.util.Utils.getEnvOrSystemProperty} at v0.36.0).
     */
    public static String envThenProperty(String name, Map<String, String> env) {
        String v = env.get(name);
        return v != null ? v : System.getProperty(name);
    }

    /** "2.11.0+cu130" from the wheel's version.py or the zip's build-version, or null when neither exists. */
    static String version(Path dir) {
        return LibtorchProbe.of(dir).version();
    }
}
