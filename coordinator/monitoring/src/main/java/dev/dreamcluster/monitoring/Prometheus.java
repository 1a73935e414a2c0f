package dev.dreamcluster.monitoring;

import akka.cluster.Member;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code GET /metrics} in the Prometheus text exposition format (version 0.0.4): gauges for the
 * run's progress and numbers, one series per rank and phase for the step-time split, members by
 * status. A value not known yet (no step so far) is left out rather than exported as NaN.
 */
final class Prometheus {
    private final StringBuilder text = new StringBuilder();

    private Prometheus() {}

    static String of(RunStatus.Snapshot s, List<RunFiles.Checkpoint> checkpoints, Iterable<Member> members) {
        Prometheus p = new Prometheus();
        String run = "run_id=\"" + s.runId() + "\"";
        p.gauge("dreamcluster_run_info", "The run being watched (value 1), its plan hash and phase.",
                run + ",plan_hash=\"" + s.planHash() + "\",phase=\"" + s.phase() + "\"", 1);
        if (s.generation() >= 0) {
            p.gauge("dreamcluster_generation", "Generation of the elastic run (0 first; one more per shrink or grow).", run,
                    s.generation());
        }
        p.gauge("dreamcluster_step", "Optimizer steps completed.", run, s.step());
        p.gauge("dreamcluster_total_steps", "Optimizer steps the run will take (0: unknown).", run, s.totalSteps());
        p.gauge("dreamcluster_workers", "Ranks in the run.", run, s.workers());
        p.gauge("dreamcluster_loss", "Training loss of the last step.", run, s.loss());
        p.gauge("dreamcluster_val_loss", "Last validation loss.", run, s.valLoss());
        p.gauge("dreamcluster_grad_norm", "Global gradient L2 norm of the last step (before clipping).", run, s.gradNorm());
        p.gauge("dreamcluster_samples_per_second", "Training images per second of the last step, all ranks.", run, s.samplesPerS());
        p.gauge("dreamcluster_seconds_per_step", "Wall-clock seconds per step over the last steps.", run, s.secondsPerStep());
        p.gauge("dreamcluster_eta_seconds", "Estimated seconds until the last step.", run, s.etaSeconds());
        p.header("dreamcluster_learning_rate", "Learning rate of the last step per component.");
        p.sample("dreamcluster_learning_rate", run + ",component=\"unet\"", s.lrUnet());
        p.sample("dreamcluster_learning_rate", run + ",component=\"text_encoder\"", s.lrTextEncoder());
        p.header("dreamcluster_worker_step_seconds", "Seconds of a rank's last step by phase (compute, comm, optimizer).");
        for (RunStatus.WorkerSplit w : s.split()) {
            String labels = run + ",rank=\"" + w.rank() + "\",address=\"" + escape(w.address()) + "\"";
            p.sample("dreamcluster_worker_step_seconds", labels + ",phase=\"compute\"", w.computeSeconds());
            p.sample("dreamcluster_worker_step_seconds", labels + ",phase=\"comm\"", w.commSeconds());
            p.sample("dreamcluster_worker_step_seconds", labels + ",phase=\"optimizer\"", w.optimizerSeconds());
        }
        p.header("dreamcluster_worker_step", "Last step a rank reported.");
        s.split().forEach(w -> p.sample("dreamcluster_worker_step", run + ",rank=\"" + w.rank() + "\"", w.step()));
        if (!checkpoints.isEmpty()) {
            p.gauge("dreamcluster_last_checkpoint_step", "Step of the last committed checkpoint.", run,
                    checkpoints.get(checkpoints.size() - 1).step());
        }
        Map<String, Integer> byStatus = new TreeMap<>();
        for (Member m : members) {
            byStatus.merge(m.status().toString().toLowerCase(Locale.ROOT), 1, Integer::sum);
        }
        p.header("dreamcluster_cluster_members", "Cluster members by status.");
        byStatus.forEach((status, count) -> p.sample("dreamcluster_cluster_members", "status=\"" + status + "\"", count));
        return p.text.toString();
    }

    private void gauge(String name, String help, String labels, double value) {
        header(name, help);
        sample(name, labels, value);
    }

    private void header(String name, String help) {
        text.append("# HELP ").append(name).append(' ').append(help).append('\n');
        text.append("# TYPE ").append(name).append(" gauge\n");
    }

    private void sample(String name, String labels, double value) {
        if (Double.isNaN(value)) {
            return;
        }
        text.append(name).append('{').append(labels).append("} ");
        if (Double.isInfinite(value)) {
            text.append(value > 0 ? "+Inf" : "-Inf");
        } else if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            text.append((long) value);
        } else {
            text.append(Double.toString(value));
        }
        text.append('\n');
    }

    /** Label values escape backslash, quote and newline. */
    private static String escape(String v) {
        return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
