package dev.dreamcluster.device;

import dev.dreamcluster.config.ConfigError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CUDA libtorch a GPU worker loads instead of the CPU one in the distribution. DJL 0.36's JNI
 * (in pytorch-jni-2.7.1-0.36.0.jar, {@code cu128/libdjl_torch.so}) is linked against libtorch 2.7.1's
 * C++ ABI: any other version dies with "symbol lookup error" when a missing function is reached, so
 * the version is checked here, before DJL loads anything. DJL reads the three settings from the
 * environment or from system properties of the same names (both work).
 *
 * <p>Accepted folders: {@code torch/lib} of the PyTorch wheel (its version is in {@code ../version.py})
 * or {@code lib/} of a libtorch zip (version in {@code ../build-version}).
 */
public final class Libtorch {
    public static final String VERSION = "2.7.1";
    public static final String FLAVOR = "cu128";
    public static final String INSTALL = "pip install torch==2.7.1 --index-url https://download.pytorch.org/whl/cu128, then "
            + "--libtorch <site-packages>/torch/lib";
    private static final Pattern WHEEL_VERSION = Pattern.compile("__version__\\s*=\\s*['\"]([^'\"]+)['\"]");

    private Libtorch() {}

    /**
     * The system properties DJL needs for {@code dir} (PYTORCH_LIBRARY_PATH, PYTORCH_VERSION, PYTORCH_FLAVOR).
     *
     * @param where the flag or variable that named dir, for the error message
     * @throws ConfigError naming what is wrong and what to install
     */
    public static Map<String, String> settings(Path dir, String where) {
        if (!Files.isDirectory(dir)) {
            throw ConfigError.invalid(where, dir.toString(), "a folder holding libtorch.so; none here: " + INSTALL);
        }
        if (!Files.exists(dir.resolve("libtorch.so"))) {
            throw ConfigError.invalid(where, dir.toString(), "a folder holding libtorch.so (this one has none): " + INSTALL);
        }
        if (!Files.exists(dir.resolve("libtorch_cuda.so"))) {
            throw ConfigError.invalid(where, dir.toString(), "a CUDA libtorch; this one has no libtorch_cuda.so (CPU only): " + INSTALL);
        }
        String version = version(dir);
        if (version == null) {
            throw ConfigError.invalid(where, dir.toString(), "a libtorch whose version can be read (../version.py of the wheel or "
                    + "../build-version of the zip; neither is here): " + INSTALL);
        }
        if (!version.equals(VERSION + "+" + FLAVOR)) {
            throw ConfigError.invalid(where, dir + " (libtorch " + version + ")", "libtorch " + VERSION + "+" + FLAVOR
                    + " exactly: DJL 0.36's CUDA JNI is built against it; " + INSTALL);
        }
        Map<String, String> s = new LinkedHashMap<>();
        s.put("PYTORCH_LIBRARY_PATH", dir.toAbsolutePath().normalize().toString());
        s.put("PYTORCH_VERSION", VERSION);
        s.put("PYTORCH_FLAVOR", FLAVOR);
        return s;
    }

    /** "2.7.1+cu128" from the wheel's version.py or the zip's build-version, or null when neither exists. */
    static String version(Path dir) {
        Path parent = dir.toAbsolutePath().normalize().getParent();
        if (parent == null) {
            return null;
        }
        try {
            Path py = parent.resolve("version.py");
            if (Files.isRegularFile(py)) {
                Matcher m = WHEEL_VERSION.matcher(Files.readString(py));
                return m.find() ? m.group(1) : null;
            }
            Path build = parent.resolve("build-version");
            if (Files.isRegularFile(build)) {
                return Files.readString(build).trim();
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }

    /**
     * The libtorch folder for a GPU worker: {@code flag} (--libtorch) if given, else the
     * PYTORCH_LIBRARY_PATH variable; checked by {@link #settings}.
     *
     * @throws ConfigError when neither names one
     */
    public static Map<String, String> forGpu(Path flag, Map<String, String> env, String device) {
        if (flag != null) {
            return settings(flag, "--libtorch");
        }
        String e = env.get("PYTORCH_LIBRARY_PATH");
        if (e != null && !e.isBlank()) {
            return settings(Path.of(e), "PYTORCH_LIBRARY_PATH");
        }
        throw ConfigError.invalid("--device", device, "cpu here: this distribution carries the CPU libtorch only; a GPU needs "
                + "libtorch " + VERSION + "+" + FLAVOR + " (" + INSTALL + " or set PYTORCH_LIBRARY_PATH)");
    }
}
