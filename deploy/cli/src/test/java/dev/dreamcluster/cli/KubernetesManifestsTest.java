package dev.dreamcluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * deploy/k8s renders with {@code kubectl kustomize} for both overlays, and the rendered objects keep
 * what Cluster Bootstrap and the run need: pods labelled app=dreamcluster (the kubernetes-api
 * discovery selector) under a ServiceAccount whose Role lists pods, a headless Service publishing
 * not-ready addresses, management on 8558 with /ready and /alive probes, data/out/keys volumes,
 * one coordinator, and in the gpu overlay one nvidia.com/gpu per worker pod.
 */
class KubernetesManifestsTest {
    private static final Path K8S = LaunchCommand.repositoryRoot(Path.of(System.getProperty("user.dir"))).resolve("deploy").resolve("k8s");

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "gpu"})
    void overlayShouldRenderWithWhatBootstrapAndTheRunNeed(String overlay) throws Exception {
        List<JsonNode> docs = render(overlay);
        JsonNode coordinator = one(docs, "Deployment", "dreamcluster-coordinator");
        JsonNode workers = one(docs, "StatefulSet", "dreamcluster-worker");
        assertEquals(1, coordinator.at("/spec/replicas").asInt());
        assertTrue(workers.at("/spec/replicas").asInt() >= 2);
        assertEquals("dreamcluster", workers.at("/spec/serviceName").asText());

        JsonNode headless = one(docs, "Service", "dreamcluster");
        assertEquals("None", headless.at("/spec/clusterIP").asText());
        assertTrue(headless.at("/spec/publishNotReadyAddresses").asBoolean());
        assertEquals("dreamcluster", headless.at("/spec/selector/app").asText());

        JsonNode role = one(docs, "Role", "dreamcluster-pod-reader");
        JsonNode rule = role.at("/rules/0");
        assertEquals("pods", rule.at("/resources/0").asText());
        assertTrue(rule.get("verbs").toString().contains("list") && rule.get("verbs").toString().contains("watch"));
        JsonNode binding = one(docs, "RoleBinding", "dreamcluster-pod-reader");
        assertEquals("dreamcluster", binding.at("/subjects/0/name").asText());

        for (JsonNode set : List.of(coordinator, workers)) {
            String name = set.at("/metadata/name").asText();
            JsonNode pod = set.at("/spec/template");
            assertEquals("dreamcluster", pod.at("/metadata/labels/app").asText(), name + ": discovery selects app=dreamcluster");
            assertEquals("dreamcluster", pod.at("/spec/serviceAccountName").asText(), name);
            assertTrue(pod.at("/spec/terminationGracePeriodSeconds").asInt() > 25, name + ": SIGTERM's grace outlasts --preemption_grace");
            JsonNode c = pod.at("/spec/containers/0");
            String args = c.get("args").toString();
            assertTrue(args.contains("--discovery=kubernetes-api"), name + " " + args);
            assertFalse(args.contains("--seed") || args.contains("--join"), name + ": no seed node " + args);
            assertTrue(ports(c).contains("management:8558"), name + " " + ports(c));
            assertEquals("/ready", c.at("/readinessProbe/httpGet/path").asText(), name);
            assertEquals("management", c.at("/readinessProbe/httpGet/port").asText(), name);
            assertEquals("/alive", c.at("/livenessProbe/httpGet/path").asText(), name);
            assertEquals("status.podIP", env(c, "POD_IP").at("/valueFrom/fieldRef/fieldPath").asText(), name);
            List<String> mounts = new ArrayList<>();
            c.get("volumeMounts").forEach(m -> mounts.add(m.get("name").asText() + ":" + m.get("mountPath").asText()));
            assertTrue(mounts.containsAll(List.of("data:/data", "out:/out", "keys:/keys", "config:/config")), name + " " + mounts);
            JsonNode keys = volume(pod, "keys");
            assertEquals("dreamcluster-keys", keys.at("/secret/secretName").asText(), name);
            assertTrue(!keys.at("/secret/optional").asBoolean(true), name + ": the TLS keys are required (secure by default)");
        }
        assertEquals("out", workers.at("/spec/volumeClaimTemplates/0/metadata/name").asText(), "each worker its own out volume");
        JsonNode config = docs.stream().filter(d -> d.at("/kind").asText().equals("ConfigMap")).findFirst().orElseThrow();
        assertTrue(config.at("/data/train.json").asText().contains("\"/data/model\""));

        JsonNode worker = workers.at("/spec/template/spec/containers/0");
        if (overlay.equals("gpu")) {
            assertEquals(1, worker.at("/resources/limits/nvidia.com~1gpu").asInt(), "one GPU per worker pod");
            assertTrue(worker.get("args").toString().contains("--device=gpu:0"));
            assertTrue(worker.get("image").asText().endsWith(":gpu"));
            assertFalse(coordinator.at("/spec/template/spec/containers/0/resources/limits").has("nvidia.com/gpu"));
        } else {
            assertTrue(worker.at("/resources/limits/nvidia.com~1gpu").isMissingNode());
            assertTrue(env(worker, "DREAMCLUSTER_JAVA_OPTS").get("value").asText().contains("num_threads=2"));
        }
    }

    private static List<JsonNode> render(String overlay) throws Exception {
        File out = File.createTempFile("kustomize-" + overlay, ".yaml");
        out.deleteOnExit();
        Process p;
        try {
            p = new ProcessBuilder("kubectl", "kustomize", K8S.resolve("overlays").resolve(overlay).toString())
                    .redirectErrorStream(true).redirectOutput(out).start();
        } catch (java.io.IOException e) {
            assumeTrue(false, "kubectl is not installed (Debian: kubernetes-client); cannot render deploy/k8s");
            throw e;
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String yaml = java.nio.file.Files.readString(out.toPath(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), yaml);
        ObjectMapper m = new YAMLMapper();
        List<JsonNode> docs = new ArrayList<>();
        try (var parser = new YAMLFactory().createParser(yaml)) {
            m.readValues(parser, JsonNode.class).forEachRemaining(docs::add);
        }
        return docs;
    }

    private static JsonNode one(List<JsonNode> docs, String kind, String name) {
        List<JsonNode> found = docs.stream()
                .filter(d -> d.at("/kind").asText().equals(kind) && d.at("/metadata/name").asText().equals(name)).toList();
        assertEquals(1, found.size(), kind + " " + name);
        return found.get(0);
    }

    private static List<String> ports(JsonNode c) {
        List<String> out = new ArrayList<>();
        c.get("ports").forEach(p -> out.add(p.get("name").asText() + ":" + p.get("containerPort").asInt()));
        return out;
    }

    private static JsonNode env(JsonNode c, String name) {
        for (JsonNode e : c.get("env")) {
            if (e.get("name").asText().equals(name)) {
                return e;
            }
        }
        throw new AssertionError("no env " + name + " in " + c.get("env"));
    }

    private static JsonNode volume(JsonNode pod, String name) {
        for (JsonNode v : pod.at("/spec/volumes")) {
            if (v.get("name").asText().equals(name)) {
                return v;
            }
        }
        throw new AssertionError("no volume " + name);
    }
}
