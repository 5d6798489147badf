package dev.dsd.testnet;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A TCP relay that stands in front of a node and delays its traffic like a long link would, because
 * this machine's kernel has no netem. The node announces the relay's address; peers that dial it get
 * a connection to the node whose bytes are delayed by the link profile in both directions, and the
 * node does not know it is delayed.
 *
 * <pre>
 *   peer ──TCP──► relay :listen ──(latency ± jitter, rate)──► node :target
 *   peer ◄──────── relay ◄──────(latency ± jitter, rate)───── node
 * </pre>
 *
 * Since every node of a testnet sits behind its own relay, a message between two nodes crosses the
 * receiver's relay: one link delay per hop.
 */
public final class LinkEmulator implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(LinkEmulator.class);
  private static final int CONNECT_TIMEOUT_MILLIS = 5_000;

  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
  private final List<Channel> servers = new ArrayList<>();
  private final AtomicLong connections = new AtomicLong();

  /** Starts relaying {@code listen} to {@code target}; returns the bound address (port 0 picks one). */
  public InetSocketAddress relay(InetSocketAddress listen, InetSocketAddress target, LinkProfile profile)
      throws InterruptedException {
    ServerBootstrap sb = new ServerBootstrap()
        .group(group)
        .channel(NioServerSocketChannel.class)
        .childOption(ChannelOption.AUTO_READ, false)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel inbound) {
            inbound.pipeline().addLast(new ChannelInboundHandlerAdapter() {
              @Override
              public void channelActive(ChannelHandlerContext ctx) {
                connect(inbound, target, profile);
              }
            });
          }
        });
    Channel server = sb.bind(listen).sync().channel();
    servers.add(server);
    InetSocketAddress bound = (InetSocketAddress) server.localAddress();
    log.info("relay listen={} target={} latency={}ms jitter={}ms bandwidth={}Mbit/s", bound, target,
        profile.latencyMillis(), profile.jitterMillis(), profile.bandwidthMbit());
    return bound;
  }

  private void connect(Channel inbound, InetSocketAddress target, LinkProfile profile) {
    long id = connections.incrementAndGet();
    Bootstrap b = new Bootstrap()
        .group(inbound.eventLoop())
        .channel(NioSocketChannel.class)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.AUTO_READ, false)
        .handler(new ChannelInboundHandlerAdapter());
    io.netty.channel.ChannelFuture cf = b.connect(target);
    cf.addListener(f -> {
      if (!f.isSuccess()) {
        log.warn("relay conn={} target={} connect failed: {}", id, target, f.cause().toString());
        inbound.close();
        return;
      }
      Channel outbound = cf.channel();
      inbound.closeFuture().addListener(x -> log.debug("relay conn={} closed", id));
      inbound.pipeline().addLast(new DelayedForwarder(outbound, profile, id * 2));
      outbound.pipeline().addLast(new DelayedForwarder(inbound, profile, id * 2 + 1));
      inbound.config().setAutoRead(true);
      outbound.config().setAutoRead(true);
    });
  }

  @Override
  public void close() {
    servers.forEach(Channel::close);
    group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
  }

  /**
   * {@code LinkEmulator --latency MS [--jitter MS] [--bandwidth MBIT] LISTEN_HOST:PORT=TARGET_HOST:PORT...}
   * Runs until killed; prints one {@code relay <listen> <target>} line per mapping.
   */
  public static void main(String[] args) throws Exception {
    double latency = 0, jitter = 0, bandwidth = 0;
    List<String[]> maps = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--latency" -> latency = Double.parseDouble(args[++i]);
        case "--jitter" -> jitter = Double.parseDouble(args[++i]);
        case "--bandwidth" -> bandwidth = Double.parseDouble(args[++i]);
        default -> {
          String[] lr = args[i].split("=", 2);
          if (lr.length != 2) {
            throw new IllegalArgumentException("expected LISTEN_HOST:PORT=TARGET_HOST:PORT, got " + args[i]);
          }
          maps.add(lr);
        }
      }
    }
    LinkProfile profile = new LinkProfile(latency, jitter, bandwidth);
    LinkEmulator emu = new LinkEmulator();
    Runtime.getRuntime().addShutdownHook(new Thread(emu::close));
    for (String[] m : maps) {
      InetSocketAddress bound = emu.relay(parse(m[0]), parse(m[1]), profile);
      System.out.println("relay " + bound.getHostString() + ":" + bound.getPort() + " " + m[1]);
    }
    System.out.flush();
    Thread.currentThread().join();
  }

  static InetSocketAddress parse(String hostPort) {
    int c = hostPort.lastIndexOf(':');
    if (c < 0) {
      throw new IllegalArgumentException("expected HOST:PORT, got " + hostPort);
    }
    return new InetSocketAddress(hostPort.substring(0, c), Integer.parseInt(hostPort.substring(c + 1)));
  }
}
