package dev.dsd.p2p.bench;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Loopback benchmark: throughput of one yamux stream over Noise between two dsd hosts vs plain
 * Netty TCP, and libp2p ping round-trip time. Prints medians of repeated runs; compare the two
 * throughputs as a ratio from the same run, since machines are shared and noisy.
 *
 * <pre>java -cp ... dev.dsd.p2p.bench.P2pBench [MiB per run] [runs] [pings]</pre>
 */
public final class P2pBench {
  static final String SINK = "/dsd/bench/sink/1.0.0";

  private P2pBench() {}

  public static void main(String[] args) throws Exception {
    long bytes = (args.length > 0 ? Long.parseLong(args[0]) : 256) << 20;
    int runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    int pings = args.length > 2 ? Integer.parseInt(args[2]) : 200;
    double[] libp2p = new double[runs];
    double[] tcp = new double[runs];
    try (NettyHost a = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost b = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      b.setStreamHandler(SINK, s -> s.channel().pipeline().addLast(new CountingSink(bytes)));
      a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      for (int r = 0; r < runs; r++) {
        long t0 = System.nanoTime();
        BulkSender[] sender = new BulkSender[1];
        a.newStream(b.peerId(), List.of(SINK), s -> {
          sender[0] = new BulkSender(bytes, () -> { });
          s.channel().pipeline().addLast(sender[0]);
        }).get(10, TimeUnit.SECONDS);
        sender[0].acknowledged.get(120, TimeUnit.SECONDS);
        libp2p[r] = mibPerSecond(bytes, System.nanoTime() - t0);
        tcp[r] = plainTcp(bytes);
      }
      double[] rtt = new double[pings];
      for (int i = 0; i < pings; i++) {
        rtt[i] = a.ping(b.peerId()).get(10, TimeUnit.SECONDS) / 1e3;
      }
      double y = median(libp2p);
      double t = median(tcp);
      System.out.printf("payload %d MiB x %d runs, loopback, %s%n", bytes >> 20, runs,
          io.netty.channel.epoll.Epoll.isAvailable() ? "epoll" : "nio");
      System.out.printf("yamux stream over noise  median %8.1f MiB/s  (runs %s)%n", y, fmt(libp2p));
      System.out.printf("plain netty tcp          median %8.1f MiB/s  (runs %s)%n", t, fmt(tcp));
      System.out.printf("ratio libp2p / tcp       %8.3f%n", y / t);
      System.out.printf("libp2p ping (new stream each) median %.0f us over %d pings, p90 %.0f us%n", median(rtt), pings,
          percentile(rtt, 0.9));
    }
  }

  static double plainTcp(long bytes) throws Exception {
    EventLoopGroup g = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    try {
      Channel server = new ServerBootstrap().group(g).channel(NioServerSocketChannel.class)
          .childHandler(new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
              ch.pipeline().addLast(new CountingSink(bytes));
            }
          }).bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
      BulkSender sender = new BulkSender(bytes, () -> { });
      long t0 = System.nanoTime();
      new Bootstrap().group(g).channel(NioSocketChannel.class).option(ChannelOption.TCP_NODELAY, true)
          .handler(sender).connect(server.localAddress()).sync();
      sender.acknowledged.get(120, TimeUnit.SECONDS);
      double r = mibPerSecond(bytes, System.nanoTime() - t0);
      server.close().sync();
      return r;
    } finally {
      g.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  static double mibPerSecond(long bytes, long nanos) {
    return bytes / 1048576.0 / (nanos / 1e9);
  }

  static double median(double[] v) {
    return percentile(v, 0.5);
  }

  static double percentile(double[] v, double q) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s[Math.min(s.length - 1, (int) Math.floor(q * (s.length - 1) + 0.5))];
  }

  static String fmt(double[] v) {
    StringBuilder sb = new StringBuilder();
    for (double x : v) {
      sb.append(String.format("%.0f ", x));
    }
    return sb.toString().trim();
  }
}
