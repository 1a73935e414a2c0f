package dev.dreamcluster.worker.node;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ServerSocketChannel;

/**
 * Where a worker's ring socket listens and what its peers dial. The ring takes ownership of the
 * listening socket and closes it once the neighbours are connected, so each generation opens a new
 * one (same port when one was given, else a free one).
 *
 * @param advertiseHost the host peers dial
 * @param advertisePort the port peers dial, or 0 for the bound port (no port mapping in between)
 */
public record RingEndpoint(String bindHost, int bindPort, String advertiseHost, int advertisePort) {

    /** A loopback endpoint on a free port (tests, embedded clusters). */
    public static RingEndpoint loopback() {
        return new RingEndpoint("127.0.0.1", 0, "127.0.0.1", 0);
    }

    /** A listening socket and the host:port peers reach it at. */
    public record Opened(ServerSocketChannel server, String address) {}

    public Opened open() {
        try {
            ServerSocketChannel s = ServerSocketChannel.open();
            s.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            s.bind(new InetSocketAddress(bindHost, bindPort));
            int port = advertisePort != 0 ? advertisePort : ((InetSocketAddress) s.getLocalAddress()).getPort();
            return new Opened(s, advertiseHost + ":" + port);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen for the ring on " + bindHost + ":" + bindPort, e);
        }
    }
}
