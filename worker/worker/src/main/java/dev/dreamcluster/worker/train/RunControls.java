package dev.dreamcluster.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dreamcluster.config.Json;
import dev.dreamcluster.protocol.RunControl;
import dev.dreamcluster.worker.sample.RunOutputs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * What users' control requests ({@link RunControl}) have set in a run, as every rank holds it:
 * how many of this generation's requests were applied, whether the run is paused, the sample prompts
 * that replaced the file's, and the log of every request applied. Immutable; the loop keeps the
 * newest. It goes into each checkpoint's trainer_state.json as {@value #KEY}, so a resume draws
 * samples from the prompts the run had (a resume starts running: it was asked for).
 *
 * @param applied this generation's requests applied so far (the next one's index)
 * @param promptsFormat "txt" or "json" once a SAMPLE_PROMPTS request was applied, else null
 * @param log one line per applied request, oldest first, across resumes
 */
record RunControls(int applied, boolean paused, String promptsFormat, String prompts, List<String> log) {
    static final String KEY = "run_control";

    /** What applying some requests did: the new state, and what the boundary must do. */
    record Applied(RunControls controls, boolean stop, boolean checkpoint, List<String> details) {}

    /**
     * The state a generation starts with: the checkpoint's (its prompts put into {@code outputs}),
     * or none. A checkpoint without the key (one no request touched) starts from none.
     */
    static RunControls resumed(Path checkpoint, RunOutputs outputs, Trainer t, Consumer<String> warn) {
        RunControls none = new RunControls(0, false, null, null, List.of());
        if (checkpoint == null) {
            return none;
        }
        JsonNode n;
        try {
            n = Json.MAPPER.readTree(Files.readString(checkpoint.resolve(dev.dreamcluster.worker.train.ckpt.TrainerState.FILE))).path(KEY);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + checkpoint.resolve(dev.dreamcluster.worker.train.ckpt.TrainerState.FILE), e);
        }
        if (!n.isObject()) {
            return none;
        }
        List<String> log = new ArrayList<>();
        n.path("log").forEach(l -> log.add(l.asText()));
        String format = n.path("sample_prompts_format").isTextual() ? n.get("sample_prompts_format").asText() : null;
        String text = n.path("sample_prompts").isTextual() ? n.get("sample_prompts").asText() : null;
        if (format != null && text != null) {
            String result = outputs.usePrompts(format, text, t);
            if (result.startsWith("refused")) {
                warn.accept(checkpoint.resolve(dev.dreamcluster.worker.train.ckpt.TrainerState.FILE) + ": the run's sample prompts were "
                        + result + "; the sample_prompts file's are used");
                format = null;
                text = null;
            }
        }
        return new RunControls(0, false, format, text, List.copyOf(log));
    }

    /** This state, paused or not (a paused run's new generation starts paused). */
    RunControls paused(boolean p) {
        return new RunControls(applied, p, promptsFormat, prompts, log);
    }

    /** Applies {@code requests} in order (every rank the same ones, at the same boundary). */
    Applied apply(List<TrainLoop.Control> requests, RunOutputs outputs, Trainer t, Path out, Consumer<String> warn) {
        boolean stop = false;
        boolean checkpoint = false;
        boolean nowPaused = paused;
        String format = promptsFormat;
        String text = prompts;
        List<String> details = new ArrayList<>();
        List<String> nextLog = new ArrayList<>(log);
        for (TrainLoop.Control c : requests) {
            String detail = "";
            switch (c.action()) {
                case CHECKPOINT -> checkpoint = true;
                case STOP -> {
                    stop = true;
                    detail = "final model in " + out.resolve("final");
                }
                case PAUSE -> nowPaused = true;
                case RESUME -> nowPaused = false;
                case SAMPLE_PROMPTS -> {
                    detail = outputs.usePrompts(c.promptsFormat(), c.prompts(), t); // every rank the same text: the same result
                    if (!detail.startsWith("refused")) {
                        format = c.promptsFormat();
                        text = c.prompts();
                    } else {
                        warn.accept("sample prompts of control #" + c.seq() + " " + detail + "; keeping the previous ones");
                    }
                }
            }
            details.add(detail);
            nextLog.add("#" + c.seq() + " " + c.action().wireName() + " after step " + t.step() + (detail.isEmpty() ? "" : ": " + detail));
        }
        return new Applied(new RunControls(applied + requests.size(), nowPaused, format, text, List.copyOf(nextLog)), stop, checkpoint,
                details);
    }

    /** The checkpoint's {@value #KEY} object, or null when no request was ever applied (the file stays as before). */
    ObjectNode toJson() {
        if (log.isEmpty()) {
            return null;
        }
        ObjectNode n = Json.MAPPER.createObjectNode();
        if (promptsFormat != null) {
            n.put("sample_prompts_format", promptsFormat).put("sample_prompts", prompts);
        }
        ArrayNode l = n.putArray("log");
        log.forEach(l::add);
        return n;
    }
}
