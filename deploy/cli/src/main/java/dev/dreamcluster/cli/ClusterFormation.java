package dev.dreamcluster.cli;

import akka.actor.typed.ActorSystem;
import akka.management.cluster.bootstrap.ClusterBootstrap;
import akka.management.javadsl.AkkaManagement;
import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.util.List;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Option;

/**
 * How a node enters the cluster when no seed is given: Akka Management 1.1.4 Cluster Bootstrap. Every
 * node runs the management HTTP endpoint (also {@code /ready} and {@code /alive} for probes), finds
 * the others' endpoints through Akka Discovery and, once {@code required_contact_points} answer and
 * none is in a cluster yet, the node with the lowest address forms it and the rest join.
 *
 * <pre>
 *   config          --contact_points HOST:PORT,...  (the management endpoints, as in akka.discovery.config)
 *   kubernetes-api  pods labelled app=SERVICE in the pod's namespace, port named "management"
 *                   (needs a Role allowing pods get/watch/list)
 *   dns             A/SRV records of SERVICE (a headless Service with publishNotReadyAddresses)
 * </pre>
 *
 * Shared by coordinator and worker as a picocli mixin; with neither --discovery nor --management it
 * adds nothing to the node.
 */
final class ClusterFormation {
    static final int DEFAULT_MANAGEMENT_PORT = 8558;

    @Option(names = "--discovery", paramLabel = "METHOD",
            description = "form the cluster with Cluster Bootstrap instead of a seed: config, kubernetes-api or dns")
    String discovery;

    @Option(names = "--contact_points", split = ",", paramLabel = "HOST:PORT",
            description = "with --discovery config: every node's management address")
    List<String> contactPoints;

    @Option(names = "--required_contact_points", paramLabel = "N",
            description = "contact points that must answer before a new cluster forms (default: all of --contact_points, else 2)")
    Integer requiredContactPoints;

    @Option(names = "--service", paramLabel = "NAME", defaultValue = "dreamcluster",
            description = "discovery service name (kubernetes-api: pod label app=NAME; dns: the Service's name)")
    String service;

    @Option(names = "--management", paramLabel = "HOST:PORT",
            description = "Akka Management HTTP (/ready, /alive, /cluster/members); default with --discovery: the node's host, port 8558")
    String management;

    boolean bootstrap() {
        return discovery != null;
    }

    /** The HOCON this node adds for management and bootstrap (empty when neither is asked for). */
    String config(String nodeHost) {
        if (discovery == null && management == null) {
            return "";
        }
        Nodes.HostPort m = management != null ? Nodes.hostPort(management, "--management")
                : new Nodes.HostPort(nodeHost, DEFAULT_MANAGEMENT_PORT);
        StringBuilder c = new StringBuilder();
        c.append("akka.management.http.hostname = ").append(Json.quote(m.host())).append('\n');
        c.append("akka.management.http.port = ").append(m.port()).append('\n');
        if (discovery == null) {
            return c.toString();
        }
        String method = switch (discovery) {
            case "config" -> "config";
            case "kubernetes-api" -> "kubernetes-api";
            case "dns" -> "akka-dns";
            default -> throw ConfigError.invalid("--discovery", Json.quote(discovery), "config, kubernetes-api or dns");
        };
        int required;
        if (method.equals("config")) {
            if (contactPoints == null || contactPoints.isEmpty()) {
                throw new ConfigError("--contact_points: required with --discovery config (every node's management HOST:PORT)");
            }
            c.append("akka.discovery.config.services.").append(Json.quote(service)).append(".endpoints = [");
            for (String p : contactPoints) {
                Nodes.HostPort hp = Nodes.hostPort(p, "--contact_points");
                c.append("{host = ").append(Json.quote(hp.host())).append(", port = ").append(hp.port()).append("}, ");
            }
            c.append("]\n");
            required = requiredContactPoints != null ? requiredContactPoints : contactPoints.size();
        } else {
            required = requiredContactPoints != null ? requiredContactPoints : 2;
        }
        if (required < 1) {
            throw ConfigError.invalid("--required_contact_points", Integer.toString(required), "a number >= 1");
        }
        String prefix = "akka.management.cluster.bootstrap.contact-point-discovery.";
        c.append(prefix).append("service-name = ").append(Json.quote(service)).append('\n');
        c.append(prefix).append("discovery-method = ").append(method).append('\n');
        c.append(prefix).append("required-contact-point-nr = ").append(required).append('\n');
        // the default 5 s margin is for slowly starting pods; contact points here answer at once
        c.append(prefix).append("stable-margin = 2s\n");
        c.append(prefix).append("interval = 500ms\n");
        // contact points may share a host and differ by port (several nodes on one machine)
        c.append("akka.management.cluster.bootstrap.contact-point.filter-on-fallback-port = false\n");
        if (method.equals("kubernetes-api")) {
            c.append(prefix).append("port-name = management\n");
        }
        return c.toString();
    }

    /** Starts management (and bootstrap) on a node created with {@link #config}; waits for the HTTP bind. */
    void start(ActorSystem<?> system) throws Exception {
        if (discovery == null && management == null) {
            return;
        }
        AkkaManagement.get(system.classicSystem()).start().toCompletableFuture().get(30, TimeUnit.SECONDS);
        if (discovery != null) {
            ClusterBootstrap.get(system.classicSystem()).start();
        }
    }
}
