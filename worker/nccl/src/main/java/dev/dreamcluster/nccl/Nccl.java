package dev.dreamcluster.nccl;

import dev.dreamcluster.device.NcclUniqueId;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.Loader;

/**
 * Whether NCCL can run in this process, and its version. Loading the presets needs the NVIDIA driver
 * ({@code libcuda.so.1}), the CUDA runtime the presets were built for ({@code libcudart.so.12}, or
 * {@code .13} with -Pcuda13) and {@code libnccl.so.2}; without them class loading throws
 * UnsatisfiedLinkError (then NoClassDefFoundError on every later touch), which is caught once here.
 */
public final class Nccl {
    private static String reason;
    private static boolean probed;

    private Nccl() {}

    /** Null when NCCL and a CUDA device are usable here, else one line saying what is missing. */
    public static synchronized String unavailableReason() {
        if (!probed) {
            reason = probe();
            probed = true;
        }
        return reason;
    }

    private static String probe() {
        try {
            Loader.load(cudart.class);
            Loader.load(nccl.class);
            int[] n = {0};
            int err = cudart.cudaGetDeviceCount(n);
            if (err != cudart.cudaSuccess) {
                return "CUDA: " + cudart.cudaGetErrorString(err).getString() + " (cudaGetDeviceCount)";
            }
            if (n[0] == 0) {
                return "no CUDA device is visible to this process";
            }
            return null;
        } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            Throwable c = e.getCause();
            if (c != null && c.getMessage() != null) {
                m = c.getMessage();
            }
            m = m.lines().findFirst().orElse(m);
            int so = m.indexOf(".so: ");
            if (so > 0 && m.lastIndexOf('/', so) >= 0) {
                m = m.substring(so + 5); // the missing library, not the cache path of the bridge that needed it
            }
            return "CUDA/NCCL cannot be loaded here (" + (m.length() > 160 ? m.substring(0, 160) + "..." : m)
                    + "); a GPU worker needs the NVIDIA driver (libcuda.so.1), " + runtimeName()
                    + " and libnccl.so.2 on the library path";
        }
    }

    /** The CUDA runtime the presets on the classpath link against. */
    static String runtimeName() {
        Package p = Loader.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        return v != null && v.compareTo("1.5.13") >= 0 ? "libcudart.so.13" : "libcudart.so.12";
    }

    /** libnccl's version code (e.g. 22809 for 2.28.9); call only when {@link #unavailableReason()} is null. */
    public static int version() {
        int[] v = {0};
        NcclCollective.check(nccl.ncclGetVersion(v), "ncclGetVersion");
        return v[0];
    }

    /** "2.28.9" from 22809 (codes since 2.9 are major*10000 + minor*100 + patch; before, *1000). */
    public static String versionString(int code) {
        return code >= 10000 ? code / 10000 + "." + code % 10000 / 100 + "." + code % 100
                : code / 1000 + "." + code % 1000 / 100 + "." + code % 100;
    }

    /** A fresh 128-byte ncclUniqueId (rank 0 of a communicator creates it; the plan carries it). */
    public static byte[] newUniqueId() {
        ncclUniqueId id = new ncclUniqueId();
        try {
            NcclCollective.check(nccl.ncclGetUniqueId(id), "ncclGetUniqueId");
            byte[] b = new byte[NcclUniqueId.BYTES];
            id.internal().get(b);
            return b;
        } finally {
            id.close();
        }
    }
}
