package dev.dreamcluster.protocol;

import dev.dreamcluster.device.CollectiveKind;
import dev.dreamcluster.device.NcclUniqueId;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * How a run's ranks exchange gradients: the TCP ring, or NCCL with the communicator's unique id
 * (base64 of 128 bytes). Every worker offers, when it identifies itself, either a fresh id of its
 * own (it is on a GPU and NCCL loads there) or the reason it cannot run NCCL; the coordinator keeps
 * rank 0's id (its bootstrap socket is the communicator's root) and puts it in the plan. A new plan
 * (a new generation) always carries a new id.
 *
 * @param kind "ring" or "nccl"
 * @param ncclUniqueId base64 of rank 0's ncclUniqueId, "" for the ring
 */
public record DataPlane(String kind, String ncclUniqueId) implements CborSerializable {
    public static final DataPlane RING = new DataPlane("ring", "");

    public DataPlane {
        if (kind.equals("nccl")) {
            NcclUniqueId.decode(ncclUniqueId); // 128 bytes or an IllegalArgumentException
        } else if (!kind.equals("ring")) {
            throw new IllegalArgumentException("data plane kind must be ring or nccl, got " + kind);
        }
    }

    public boolean isNccl() {
        return kind.equals("nccl");
    }

    /** The 128 bytes of the unique id (nccl only). */
    public byte[] uniqueId() {
        return NcclUniqueId.decode(ncclUniqueId);
    }

    /**
     * What a worker offers: a base64 id when it can run NCCL, else the reason it cannot.
     *
     * @param ncclUniqueId base64 of its own fresh id, "" when it cannot run NCCL
     * @param notNccl why it cannot ("cpu worker", the loader's line), "" when it can
     */
    public record Offer(String ncclUniqueId, String notNccl) implements CborSerializable {
        public static Offer ring(String why) {
            return new Offer("", why);
        }

        public static Offer nccl(byte[] id) {
            return new Offer(NcclUniqueId.encode(id), "");
        }
    }

    /**
     * The data plane for ranks offering {@code offers} (rank order) under {@code --collective kind}.
     *
     * @param log receives the one line saying auto fell back to the ring
     * @throws dev.dreamcluster.config.ConfigError when nccl was asked for and a rank cannot run it
     */
    public static DataPlane choose(CollectiveKind kind, List<Offer> offers, Consumer<String> log) {
        List<String> why = new ArrayList<>();
        for (Offer o : offers) {
            why.add(o.ncclUniqueId().isEmpty() ? (o.notNccl().isEmpty() ? "offered no NCCL id" : o.notNccl()) : null);
        }
        return kind.resolve(why, log) == CollectiveKind.NCCL ? new DataPlane("nccl", offers.get(0).ncclUniqueId()) : RING;
    }
}
