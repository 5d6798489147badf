package dev.dsd.node.http;

import dev.dsd.node.entry.GenerationQueue;

import dev.dsd.node.generate.Generator;
import dev.dsd.node.metrics.NodeMetrics;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The OpenAI-compatible HTTP API of a node ({@code --http HOST:PORT}); routes in {@link ApiRoutes}.
 * Each connection's pipeline, top to bottom:
 *
 * <pre>
 * HttpServerCodec      HTTP/1.1 framing; request line and headers bounded by the constants below
 * ApiBodyAggregator    whole requests; a body over {@link HttpApiConfig#maxBodyBytes()} gets 413
 * HttpApiHandler       one request at a time per connection, answered by {@link ApiRoutes}
 * </pre>
 *
 * Generations run on {@link HttpApiConfig#maxConcurrentGenerations()} threads of their own, never
 * on the event loop. The server does not own the generator: close it after the server.
 */
public final class HttpApiServer implements AutoCloseable {
  /** Longest request line (method, URI, version), in bytes. */
  public static final int MAX_INITIAL_LINE_BYTES = 8 * 1024;
  /** Most bytes of request headers. */
  public static final int MAX_HEADER_BYTES = 16 * 1024;
  /** Size the decoder cuts a body into before aggregation (not a limit). */
  static final int BODY_PIECE_BYTES = 8 * 1024;
  /** Event loop threads; they only route and write, generation has its own threads. */
  public static final int EVENT_LOOP_THREADS = 2;
  /** How long {@link #close()} waits for running generations to notice their client is gone. */
  public static final long CLOSE_GRACE_MILLIS = 5_000;
  private static final Logger log = LoggerFactory.getLogger(HttpApiServer.class);

  private final EventLoopGroup group;
  private final Channel server;
  private final ChannelGroup connections = new DefaultChannelGroup("dsd-http", GlobalEventExecutor.INSTANCE);
  private final GenerationQueue slots;
  private final boolean ownsSlots;
  private final AtomicBoolean closed = new AtomicBoolean();

  private HttpApiServer(HttpApiConfig config, Generator generator, ServedModel model, NodeMetrics metrics,
      GenerationQueue queue) {
    ChatTemplate template = ChatTemplate.load(model.modelDir());
    ownsSlots = queue == null;
    slots = queue != null ? queue : new GenerationQueue(config.maxConcurrentGenerations(), config.maxQueuedRequests(),
        metrics::recordQueueWait);
    if (ownsSlots) {
      metrics.queueDepth(slots::waiting);
    }
    ApiRoutes routes = new ApiRoutes(generator, model, template, metrics, slots);
    group = new MultiThreadIoEventLoopGroup(EVENT_LOOP_THREADS, NioIoHandler.newFactory());
    try {
      ServerBootstrap b = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
          .childOption(ChannelOption.TCP_NODELAY, true)
          .childHandler(new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
              connections.add(ch);
              ch.pipeline()
                  .addLast("http", new HttpServerCodec(MAX_INITIAL_LINE_BYTES, MAX_HEADER_BYTES, BODY_PIECE_BYTES))
                  .addLast("body", new ApiBodyAggregator(config.maxBodyBytes(), metrics))
                  .addLast("api", new HttpApiHandler(routes, metrics));
            }
          });
      server = b.bind(config.host(), config.port()).syncUninterruptibly().channel();
    } catch (RuntimeException e) {
      if (ownsSlots) {
        slots.close(0);
      }
      group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
    log.info("HTTP API for {} ({} template) at {}", model.id(), template.family(), url());
  }

  /** Binds and starts serving {@code model} through {@code generator}. */
  public static HttpApiServer start(HttpApiConfig config, Generator generator, ServedModel model, NodeMetrics metrics) {
    return new HttpApiServer(config, generator, model, metrics, null);
  }

  /** With a queue shared with other front doors (the node's {@code /dsd/generate/1.0.0}); the caller closes it. */
  public static HttpApiServer start(HttpApiConfig config, Generator generator, ServedModel model, NodeMetrics metrics,
      GenerationQueue queue) {
    return new HttpApiServer(config, generator, model, metrics, queue);
  }

  public InetSocketAddress address() {
    return (InetSocketAddress) server.localAddress();
  }

  /** e.g. {@code http://127.0.0.1:8080}; OpenAI clients take {@code url() + "/v1"} as base URL. */
  public String url() {
    InetSocketAddress a = address();
    String host = a.getAddress() instanceof Inet6Address ? "[" + a.getAddress().getHostAddress() + "]"
        : a.getAddress().getHostAddress();
    return "http://" + host + ":" + a.getPort();
  }

  /**
   * Stops listening and closes every connection; running generations see their client gone and
   * stop within a round (or are interrupted after {@link #CLOSE_GRACE_MILLIS}).
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    server.close().syncUninterruptibly();
    connections.close().awaitUninterruptibly();
    if (ownsSlots) {
      slots.close(CLOSE_GRACE_MILLIS);
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
