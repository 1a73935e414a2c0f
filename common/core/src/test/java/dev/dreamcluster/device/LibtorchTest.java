package dev.dreamcluster.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dreamcluster.config.ConfigError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which libtorch a worker accepts (the jar's 2.7.1, or any version with a JNI built for it) and DJL's lookup order. */
class LibtorchTest {
    private static final String WHEEL_2_11 = "from typing import Optional\n__all__ = ['__version__']\n__version__ = '2.11.0+cu130'\n"
            + "debug = False\ncuda: Optional[str] = '13.0'\ngit_version = 'abc'\n";

    /** A wheel layout: site/torch/{version.py,lib/libtorch*.so,share/cmake/Torch/TorchConfig.cmake}, site/nvidia/{cu13,nccl}/lib. */
    private static Path wheel(Path site, String versionPy, boolean cuda) throws Exception {
        Path lib = Files.createDirectories(site.resolve("torch/lib"));
        Files.writeString(lib.resolve("libtorch.so"), "");
        Files.writeString(lib.resolve("libtorch_cpu.so"), "0123456789");
        if (cuda) {
            Files.writeString(lib.resolve("libtorch_cuda.so"), "");
        }
        Files.writeString(site.resolve("torch/version.py"), versionPy);
        Path cmake = Files.createDirectories(site.resolve("torch/share/cmake/Torch"));
        Files.writeString(cmake.resolve("TorchConfig.cmake"), "  set(TORCH_CXX_FLAGS \"-D_GLIBCXX_USE_CXX11_ABI=1\")\n");
        Files.createDirectories(site.resolve("nvidia/nccl/lib"));
        Files.createDirectories(site.resolve("nvidia/cu13/lib"));
        return lib;
    }

    private static void jni(Path file, String version, long cpuSize) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "");
        Files.writeString(file.resolveSibling(file.getFileName() + ".built-for"), "version=" + version + "\nflavor=cu130\nlibtorch_cpu.so="
                + cpuSize + "\ncxx=20\nabi=1\ndjl=0.36.0\npatch_sha256=x\n");
    }

    @Test
    void probeReadsTheWheel(@TempDir Path tmp) throws Exception {
        Path lib = wheel(tmp, WHEEL_2_11, true);
        LibtorchProbe p = LibtorchProbe.of(lib);
        assertEquals("2.11.0+cu130", p.version());
        assertEquals("2.11.0", p.baseVersion());
        assertEquals("13.0", p.cudaVersion());
        assertEquals("cu130", p.flavor());
        assertEquals("1", p.cxx11Abi());
        assertEquals(List.of(tmp.resolve("nvidia/cu13/lib"), tmp.resolve("nvidia/nccl/lib")), p.nvidiaLibs());
        assertTrue(p.describe().startsWith("libtorch 2.11.0+cu130 (CUDA 13.0, _GLIBCXX_USE_CXX11_ABI 1) at "), p.describe());
        assertEquals(tmp.resolve("cache/pytorch/2.11.0-cu130-linux-x86_64/0.36.0-libdjl_torch.so"),
                p.jniInCache(Map.of("DJL_CACHE_DIR", tmp.resolve("cache").toString())));
        assertEquals(tmp.resolve("e/pytorch/2.11.0-cu130-linux-x86_64/0.36.0-libdjl_torch.so"),
                p.jniInCache(Map.of("DJL_CACHE_DIR", "x", "ENGINE_CACHE_DIR", tmp.resolve("e").toString())));
        // a libtorch zip: build-version, no cuda line: the flavor comes from the suffix
        Path zip = Files.createDirectories(tmp.resolve("libtorch/lib"));
        Files.writeString(zip.resolve("libtorch_cuda.so"), "");
        Files.writeString(tmp.resolve("libtorch/build-version"), "2.7.1+cu128\n");
        assertEquals("12.8", LibtorchProbe.of(zip).cudaVersion());
        assertEquals("cu128", LibtorchProbe.of(zip).flavor());
        assertNull(LibtorchProbe.of(zip).cxx11Abi());
    }

    @Test
    void theJarsVersionNeedsNoBuiltJni(@TempDir Path tmp) throws Exception {
        Path lib = wheel(tmp, "__version__ = '2.7.1+cu126'\ncuda = '12.6'\n", true);
        assertEquals(Map.of("PYTORCH_LIBRARY_PATH", lib.toString(), "PYTORCH_VERSION", "2.7.1", "PYTORCH_FLAVOR", "cu128"),
                Libtorch.settings(lib, "--libtorch", true, Map.of()));
        // the launcher's defaults agree
        Libtorch.settings(lib, "--libtorch", true, Map.of("PYTORCH_VERSION", "2.7.1", "PYTORCH_FLAVOR", "cu128", "PYTORCH_LIBRARY_PATH",
                lib.toString()));
        ConfigError e = assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, Map.of("PYTORCH_FLAVOR", "cu126")));
        assertTrue(e.getMessage().contains("DJL reads PYTORCH_FLAVOR=cu126 from the environment before the system property (cu128)"),
                e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        Path cpu = wheel(tmp.resolve("cpu"), "__version__ = '2.7.1+cpu'\n", false);
        assertEquals("cpu", Libtorch.settings(cpu, "--libtorch", false, Map.of()).get("PYTORCH_FLAVOR"));
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(cpu, "--libtorch", true, Map.of())).getMessage()
                .contains("CPU only"));
    }

    @Test
    void anotherVersionNeedsAJniBuiltForIt(@TempDir Path tmp) throws Exception {
        Path lib = wheel(tmp, WHEEL_2_11, true);
        Map<String, String> env = Map.of("DJL_CACHE_DIR", tmp.resolve("cache").toString());
        ConfigError none = assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, env));
        assertEquals("--libtorch: " + lib + " (libtorch 2.11.0+cu130) is not allowed (libtorch 2.7.1 (DJL 0.36.0's published JNI) or one "
                + "with a JNI built for it: run bin/gpu-check jni --libtorch " + lib + " (it needs CMake or g++ and libtorch's headers))",
                none.getMessage());
        // built into the libtorch folder: found first by DJL whatever PYTORCH_VERSION/FLAVOR say (the launcher's defaults)
        jni(lib.resolve(Libtorch.JNI_NAME), "2.11.0+cu130", 10);
        Map<String, String> expect = Map.of("PYTORCH_LIBRARY_PATH", lib.toString(), "PYTORCH_VERSION", "2.11.0", "PYTORCH_FLAVOR", "cu130");
        assertEquals(expect, Libtorch.settings(lib, "--libtorch", true, env));
        assertEquals(expect, Libtorch.settings(lib, "--libtorch", true, Map.of("PYTORCH_VERSION", "2.7.1", "PYTORCH_FLAVOR", "cu128")));
        ConfigError elsewhere = assertThrows(ConfigError.class,
                () -> Libtorch.settings(lib, "--libtorch", true, Map.of("PYTORCH_LIBRARY_PATH", "/opt/other/lib")));
        assertTrue(elsewhere.getMessage().contains("DJL reads PYTORCH_LIBRARY_PATH=/opt/other/lib from the environment"), elsewhere.getMessage());
        // a stale JNI (another build of the same version: libtorch_cpu.so's size differs) is refused
        jni(lib.resolve(Libtorch.JNI_NAME), "2.11.0+cu130", 11);
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, env)).getMessage()
                .contains("built for a libtorch_cpu.so of 11 bytes, this one has 10 (another build of 2.11.0+cu130): rebuild it with "
                        + "bin/gpu-check jni --libtorch " + lib));
        jni(lib.resolve(Libtorch.JNI_NAME), "2.10.0+cu130", 10);
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, env)).getMessage()
                .contains("it was built for libtorch 2.10.0+cu130, this is 2.11.0+cu130"));
        Files.delete(lib.resolve(Libtorch.JNI_NAME + ".built-for"));
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, env)).getMessage()
                .contains("no .built-for stamp"));
        Files.delete(lib.resolve(Libtorch.JNI_NAME));
        // built into DJL's cache (a read-only site-packages): PYTORCH_VERSION and PYTORCH_FLAVOR must then name it
        Path cached = tmp.resolve("cache/pytorch/2.11.0-cu130-linux-x86_64/" + Libtorch.JNI_NAME);
        jni(cached, "2.11.0+cu130", 10);
        assertEquals(expect, Libtorch.settings(lib, "--libtorch", true, env));
        Map<String, String> launcherDefaults = Map.of("DJL_CACHE_DIR", tmp.resolve("cache").toString(), "PYTORCH_VERSION", "2.7.1");
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch", true, launcherDefaults)).getMessage()
                .contains("DJL reads PYTORCH_VERSION=2.7.1 from the environment before the system property (2.11.0); unset it or set it "
                        + "to 2.11.0"));
    }

    @Test
    void badFoldersAreOneLine(@TempDir Path tmp) throws Exception {
        Path lib = Files.createDirectories(tmp.resolve("torch/lib"));
        ConfigError none = assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch"));
        assertTrue(none.getMessage().startsWith("--libtorch: " + lib + " is not allowed (a folder holding libtorch.so (this one"),
                none.getMessage());
        Files.writeString(lib.resolve("libtorch.so"), "");
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch")).getMessage().contains("CPU only"));
        Files.writeString(lib.resolve("libtorch_cuda.so"), "");
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(lib, "--libtorch")).getMessage().contains("neither is here"));
        assertTrue(assertThrows(ConfigError.class, () -> Libtorch.settings(tmp.resolve("nope"), "--libtorch")).getMessage()
                .contains("none here"));
        ConfigError missing = assertThrows(ConfigError.class, () -> Libtorch.forGpu(null, Map.of(), "gpu:0"));
        assertTrue(missing.getMessage().startsWith("--device: gpu:0 is not allowed (cpu here: this distribution carries the CPU"));
        assertFalse(missing.getMessage().contains("\n"));
    }

    /** DJL's Utils.getEnvOrSystemProperty: the environment first, the property only where the environment has none. */
    @Test
    void environmentBeatsSystemProperties() {
        String k = "DREAMCLUSTER_LIBTORCH_TEST_KEY";
        System.setProperty(k, "property");
        try {
            assertEquals("environment", Libtorch.envThenProperty(k, Map.of(k, "environment")));
            assertEquals("property", Libtorch.envThenProperty(k, Map.of()));
        } finally {
            System.clearProperty(k);
        }
        assertNull(Libtorch.envThenProperty(k, Map.of()));
    }
}
