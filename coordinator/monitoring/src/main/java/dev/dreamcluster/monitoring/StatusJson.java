package dev.dreamcluster.monitoring;

import akka.cluster.Member;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Set;

/** The body of {@code GET /api/status}: the run (from the topic), its files, the cluster members. */
final class StatusJson {
    private StatusJson() {}

    static ObjectNode of(RunStatus.Snapshot s, RunFiles files, Iterable<Member> members, Set<Member> unreachable) {
        ObjectNode n = JsonOut.object();
        n.put("run_id", s.runId() == 0 ? null : Long.toString(s.runId()));
        if (s.generation() >= 0) {
            n.put("generation", s.generation()); // elastic runs: 0, then one more per shrink or grow
        } else {
            n.putNull("generation");
        }
        n.put("phase", s.phase());
        n.put("workers", s.workers());
        n.put("plan_hash", s.planHash());
        n.put("step", s.step());
        n.put("total_steps", s.totalSteps());
        JsonOut.number(n, "progress", s.progress());
        JsonOut.number(n, "eta_seconds", s.etaSeconds());
        JsonOut.number(n, "seconds_per_step", s.secondsPerStep());
        JsonOut.number(n, "samples_per_s", s.samplesPerS());
        JsonOut.number(n, "loss", s.loss());
        JsonOut.number(n, "val_loss", s.valLoss());
        if (Double.isFinite(s.valLoss())) { // step 0 is the starting val_loss
            n.put("val_loss_step", s.valLossStep());
        } else {
            n.putNull("val_loss_step");
        }
        JsonOut.number(n, "grad_norm", s.gradNorm());
        ObjectNode lr = n.putObject("lr");
        JsonOut.number(lr, "unet", s.lrUnet());
        JsonOut.number(lr, "text_encoder", s.lrTextEncoder());
        ArrayNode split = n.putArray("split");
        for (RunStatus.WorkerSplit w : s.split()) {
            ObjectNode r = split.addObject();
            r.put("rank", w.rank());
            r.put("address", w.address());
            r.put("step", w.step());
            JsonOut.number(r, "samples_per_s", w.samplesPerS());
            JsonOut.number(r, "compute_s", w.computeSeconds());
            JsonOut.number(r, "comm_s", w.commSeconds());
            JsonOut.number(r, "optimizer_s", w.optimizerSeconds());
        }
        List<RunFiles.Checkpoint> ckpts = files.checkpoints();
        ArrayNode all = n.putArray("checkpoints");
        ckpts.forEach(c -> all.addObject().put("step", c.step()).put("path", c.path().toString()));
        if (ckpts.isEmpty()) {
            n.putNull("last_checkpoint");
        } else {
            RunFiles.Checkpoint c = ckpts.get(ckpts.size() - 1);
            n.putObject("last_checkpoint").put("step", c.step()).put("path", c.path().toString());
        }
        ArrayNode samples = n.putArray("samples");
        files.latestSamples(12).forEach(p -> samples.add("samples/" + p));
        ArrayNode ms = n.putArray("members");
        for (Member m : members) {
            ObjectNode o = ms.addObject();
            o.put("address", m.address().toString());
            o.put("status", m.status().toString());
            o.put("reachable", !unreachable.contains(m));
            ArrayNode roles = o.putArray("roles");
            m.getRoles().stream().filter(r -> !r.startsWith("dc-")).sorted().forEach(roles::add);
        }
        n.put("message", s.message());
        return n;
    }
}
