package dev.dreamcluster.device;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a libtorch folder is, read from the files of an installed PyTorch or libtorch (nothing is loaded):
 * {@code torch/lib} of a wheel (version and CUDA in {@code ../version.py}, the CUDA and NCCL libraries in
 * the {@code nvidia/<name>/lib} folders of the wheels beside {@code torch/}, the C++ ABI in
 * {@code ../share/cmake/Torch/TorchConfig.cmake}) or {@code lib/} of a libtorch zip ({@code ../build-version}).
 * It also says where a DJL JNI built for it by {@code bin/gpu-check jni} lies, if one does.
 *
 * @param lib the folder (absolute, normalized)
 * @param version "2.11.0+cu130", or null when neither version file is there
 * @param cudaVersion "13.0" from version.py's {@code cuda = '13.0'}, else from the version's +cuNNN suffix; null for a CPU build
 * @param hasCudaLibrary whether {@code libtorch_cuda.so} is in the folder
 * @param cxx11Abi "1" or "0" from TorchConfig.cmake's {@code _GLIBCXX_USE_CXX11_ABI}, null when unknown
 * @param nvidiaLibs the {@code nvidia/*}{@code /lib} folders beside the wheel's {@code torch/} (libcudart, libnccl, ...)
 */
public record LibtorchProbe(Path lib, String version, String cudaVersion, boolean hasCudaLibrary, String cxx11Abi,
        List<Path> nvidiaLibs) {
    private static final Pattern PY_VERSION = Pattern.compile("(?m)^__version__\\s*=\\s*['\"]([^'\"]+)['\"]");
    private static final Pattern PY_CUDA = Pattern.compile("(?m)^cuda\\s*(?::\\s*[^=]+)?=\\s*['\"]([0-9.]+)['\"]");
    private static final Pattern ABI = Pattern.compile("_GLIBCXX_USE_CXX11_ABI=([01])");
    private static final Pattern CU_SUFFIX = Pattern.compile("\\+cu(\\d+)(\\d)$");

    /** Reads {@code dir}; never throws for a missing or odd file (the fields say what was found). */
    public static LibtorchProbe of(Path dir) {
        Path lib = dir.toAbsolutePath().normalize();
        Path parent = lib.getParent();
        String version = null;
        String cuda = null;
        String abi = null;
        List<Path> nvidia = new ArrayList<>();
        if (parent != null) {
            String py = read(parent.resolve("version.py"));
            if (py != null) {
                version = group(PY_VERSION, py);
                cuda = group(PY_CUDA, py);
            } else {
                String build = read(parent.resolve("build-version"));
                version = build == null || build.isBlank() ? null : build.trim();
            }
            abi = group(ABI, read(parent.resolve("share/cmake/Torch/TorchConfig.cmake")));
            Path site = parent.getParent();
            if (site != null && Files.isDirectory(site.resolve("nvidia"))) {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(site.resolve("nvidia"))) {
                    for (Path p : ds) {
                        if (Files.isDirectory(p.resolve("lib"))) {
                            nvidia.add(p.resolve("lib"));
                        }
                    }
                } catch (IOException e) {
                    // unreadable: no nvidia folders
                }
                nvidia.sort(null);
            }
        }
        if (cuda == null && version != null) {
            Matcher m = CU_SUFFIX.matcher(version);
            if (m.find()) {
                cuda = m.group(1) + "." + m.group(2);
            }
        }
        return new LibtorchProbe(lib, version, cuda, Files.exists(lib.resolve("libtorch_cuda.so")), abi, List.copyOf(nvidia));
    }

    /** {@code torch/lib} under a site-packages folder (what {@code python3 -c 'import site; ...'} names). */
    public static Path inSitePackages(Path sitePackages) {
        return sitePackages.resolve("torch").resolve("lib");
    }

    /** Whether libtorch.so is in the folder. */
    public boolean hasLibtorch() {
        return Files.exists(lib.resolve("libtorch.so"));
    }

    /** "2.11.0" of "2.11.0+cu130"; null without a version. */
    public String baseVersion() {
        return version == null ? null : version.replaceFirst("\\+.*$", "");
    }

    /** DJL's flavor name for it: "cu130" for CUDA 13.0, "cpu" without libtorch_cuda.so. */
    public String flavor() {
        if (!hasCudaLibrary) {
            return "cpu";
        }
        if (version != null && version.contains("+cu")) {
            return version.substring(version.indexOf("+cu") + 1);
        }
        return cudaVersion == null ? "cu" : "cu" + cudaVersion.replace(".", "");
    }

    /** The JNI DJL tries first for this libtorch: {@code <lib>/0.36.0-libdjl_torch.so}. */
    public Path jniInLib() {
        return lib.resolve(Libtorch.JNI_NAME);
    }

    /**
     * Where DJL looks next: {@code <engine cache>/pytorch/<version>-<flavor>-linux-x86_64/0.36.0-libdjl_torch.so},
     * the engine cache being ENGINE_CACHE_DIR, else DJL_CACHE_DIR, else ~/.djl.ai (each from the environment,
     * then the system properties: DJL's order).
     */
    public Path jniInCache(Map<String, String> env) {
        String dir = Libtorch.envThenProperty("ENGINE_CACHE_DIR", env);
        if (dir == null || dir.isEmpty()) {
            dir = Libtorch.envThenProperty("DJL_CACHE_DIR", env);
        }
        Path cache = dir == null || dir.isEmpty() ? Path.of(System.getProperty("user.home"), ".djl.ai") : Path.of(dir);
        return cache.resolve("pytorch").resolve(baseVersion() + "-" + flavor() + "-linux-x86_64").resolve(Libtorch.JNI_NAME);
    }

    /**
     * The stamp {@code build-djl-jni.sh} wrote beside {@code jni} ({@code <jni>.built-for}): null when the
     * JNI has none; otherwise why it does not fit this libtorch, or "" when it does (same version, same
     * size of libtorch_cpu.so, the same DJL).
     */
    public String stampMismatch(Path jni) {
        Path stamp = jni.resolveSibling(jni.getFileName() + ".built-for");
        String text = read(stamp);
        if (text == null) {
            return null;
        }
        Properties p = new Properties();
        try {
            p.load(new java.io.StringReader(text));
        } catch (IOException e) {
            return stamp + " cannot be read";
        }
        if (!String.valueOf(version).equals(p.getProperty("version"))) {
            return "it was built for libtorch " + p.getProperty("version") + ", this is " + version;
        }
        if (!Libtorch.DJL_VERSION.equals(p.getProperty("djl"))) {
            return "it was built for DJL " + p.getProperty("djl") + ", this is DJL " + Libtorch.DJL_VERSION;
        }
        try {
            long size = Files.size(lib.resolve("libtorch_cpu.so"));
            if (!Long.toString(size).equals(p.getProperty("libtorch_cpu.so"))) {
                return "it was built for a libtorch_cpu.so of " + p.getProperty("libtorch_cpu.so") + " bytes, this one has " + size
                        + " (another build of " + version + ")";
            }
        } catch (IOException e) {
            return lib.resolve("libtorch_cpu.so") + " cannot be read";
        }
        return "";
    }

    /** One line: "libtorch 2.11.0+cu130 (CUDA 13.0, C++11 ABI 1) at DIR; nvidia libs: a, b". */
    public String describe() {
        return "libtorch " + (version == null ? "(version unknown)" : version) + " (" + (hasCudaLibrary ? "CUDA " + cudaVersion : "CPU only")
                + ", _GLIBCXX_USE_CXX11_ABI " + (cxx11Abi == null ? "unknown" : cxx11Abi) + ") at " + lib
                + (nvidiaLibs.isEmpty() ? "" : "; nvidia libs: " + nvidiaLibs.size() + " folders under " + nvidiaLibs.get(0).getParent().getParent());
    }

    private static String group(Pattern p, String text) {
        if (text == null) {
            return null;
        }
        Matcher m = p.matcher(text);
        return m.find() ? m.group(1) : null;
    }

    private static String read(Path p) {
        try {
            return Files.isRegularFile(p) ? Files.readString(p) : null;
        } catch (IOException e) {
            return null;
        }
    }
}
