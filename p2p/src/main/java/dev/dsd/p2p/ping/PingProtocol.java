package dev.dsd.p2p.ping;

import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.host.Stream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;

/**
 * libp2p ping ({@code /ipfs/ping/1.0.0}): the opener sends 32 random bytes, the other side echoes
 * each 32-byte block back on the same stream; the round-trip time is the measurement.
 */
public final class PingProtocol {
  public static final String ID = "/ipfs/ping/1.0.0";
  public static final int SIZE = 32;

  private PingProtocol() {}

  /**
   * Responder: echo whole 32-byte blocks until the remote half-closes, then half-close too. That
   * FIN is what lets the opener forget the stream: js-libp2p keeps a ping stream whose remote never
   * closed its write side, and refuses a second ping on the connection once one is kept.
   */
  public static void respond(Stream s) {
    s.channel().pipeline().addLast(new ChannelInboundHandlerAdapter() {
      private final ByteBuf acc = Unpooled.buffer();

      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf b = (ByteBuf) msg;
        acc.writeBytes(b);
        b.release();
        while (acc.readableBytes() >= SIZE) {
          ctx.writeAndFlush(acc.readRetainedSlice(SIZE));
        }
        acc.discardReadBytes();
      }

      @Override
      public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
          s.closeWrite();
        }
        ctx.fireUserEventTriggered(evt);
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        acc.release();
      }
    });
  }

  /** Opener: one ping on a fresh stream; completes with the round trip in nanoseconds. */
  public static CompletableFuture<Long> ping(Stream s) {
    CompletableFuture<Long> rtt = new CompletableFuture<>();
    byte[] payload = new byte[SIZE];
    ThreadLocalRandom.current().nextBytes(payload);
    ByteBuf acc = Unpooled.buffer(SIZE);
    s.channel().pipeline().addLast(new ChannelInboundHandlerAdapter() {
      long start;

      @Override
      public void handlerAdded(ChannelHandlerContext ctx) {
        start = System.nanoTime();
        ctx.writeAndFlush(Unpooled.wrappedBuffer(payload));
      }

      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf b = (ByteBuf) msg;
        acc.writeBytes(b, Math.min(b.readableBytes(), acc.writableBytes()));
        b.release();
        if (acc.readableBytes() == SIZE) {
          long t = System.nanoTime() - start;
          if (Arrays.equals(payload, ByteBufUtil.getBytes(acc))) {
            rtt.complete(t);
          } else {
            rtt.completeExceptionally(new ProtocolViolationException("ping: the echo differs from what was sent"));
          }
          acc.release();
          ctx.close();
        }
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        rtt.completeExceptionally(new ProtocolViolationException("ping stream closed before the echo"));
      }
    });
    return rtt;
  }
}
