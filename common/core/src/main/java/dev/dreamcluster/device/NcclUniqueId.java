package dev.dreamcluster.device;

import java.util.Arrays;
import java.util.Base64;

/**
 * The 128-byte {@code ncclUniqueId} that lets every rank join one communicator. Rank 0's worker
 * creates it ({@code ncclGetUniqueId}) and offers it when it identifies itself; the coordinator puts
 * the chosen one in the run plan as base64 (CBOR-friendly and printable), and every rank decodes it.
 * A fresh id is needed for every communicator (NCCL refuses to reuse one), so each plan gets its own.
 */
public final class NcclUniqueId {
    public static final int BYTES = 128;

    private NcclUniqueId() {}

    public static String encode(byte[] id) {
        if (id.length != BYTES) {
            throw new IllegalArgumentException("an ncclUniqueId has " + BYTES + " bytes, got " + id.length);
        }
        return Base64.getEncoder().encodeToString(id);
    }

    /** @throws IllegalArgumentException when {@code text} is not the base64 of exactly 128 bytes */
    public static byte[] decode(String text) {
        byte[] b;
        try {
            b = Base64.getDecoder().decode(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the plan's NCCL unique id is not base64: " + e.getMessage());
        }
        if (b.length != BYTES) {
            throw new IllegalArgumentException("the plan's NCCL unique id has " + b.length + " bytes, not " + BYTES);
        }
        return b;
    }

    /** True for NCCL's all-zero "no id" value (also what an uninitialised buffer looks like). */
    public static boolean isBlank(byte[] id) {
        return Arrays.equals(id, new byte[BYTES]);
    }
}
