package dev.dreamcluster.worker.train;

import dev.dreamcluster.io.MetricsLog;
import dev.dreamcluster.io.StepMetrics;
import java.io.PrintStream;

/**
 * A single-process run's {@link TrainLoop.StepListener}: every step into metrics.jsonl, and a
 * progress line (steps, loss, lr, it/s, ETA) redrawn on a terminal or printed every log_step
 * otherwise.
 */
public final class LocalProgress implements TrainLoop.StepListener, AutoCloseable {
    private final MetricsLog metrics;
    private final PrintStream progress;
    private final int logStep;
    private final long start = System.nanoTime();
    private int firstStep = -1;

    public LocalProgress(MetricsLog metrics, PrintStream progress, int logStep) {
        this.metrics = metrics;
        this.progress = progress;
        this.logStep = logStep;
    }

    @Override
    public void stepCompleted(StepMetrics m, int total) {
        metrics.append(m);
        if (firstStep < 0) {
            firstStep = m.step();
        }
        if (m.step() == 0 || progress == null) {
            return;
        }
        if (m.skipped() != null) {
            progress.printf("%swarning: step %d SKIPPED (no update): %s%n", System.console() != null ? "\n" : "", m.step(), m.skipped());
        }
        double secs = (System.nanoTime() - start) / 1e9;
        double itPerS = (m.step() - firstStep) / Math.max(secs, 1e-9);
        long eta = (long) ((total - m.step()) / Math.max(itPerS, 1e-9));
        int width = 24;
        int filled = (int) ((long) width * m.step() / total);
        String line = String.format("step %d/%d [%s%s] loss %.4f lr %.2e %.2f it/s ETA %02d:%02d:%02d%s", m.step(), total,
                "#".repeat(filled), ".".repeat(width - filled), m.loss(), m.lrUnet() > 0 ? m.lrUnet() : m.lrTextEncoder(),
                itPerS, eta / 3600, eta / 60 % 60, eta % 60, Double.isNaN(m.valLoss()) ? "" : String.format(" val %.4f", m.valLoss()));
        if (System.console() != null) {
            progress.print("\r" + line + (m.step() == total ? "\n" : ""));
            progress.flush();
        } else if (m.step() % logStep == 0 || m.step() == total || !Double.isNaN(m.valLoss())) {
            progress.println(line);
        }
    }

    @Override
    public void close() {
        metrics.close();
    }
}
