package dev.dsd.p2p.host;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.security.MessageDigest;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

/** Test fixture: {@code /dsd/echo/1.0.0} echoes every byte and half-closes after the remote does. */
public final class EchoProtocol {
  public static final String ID = "/dsd/echo/1.0.0";

  private EchoProtocol() {}

  public static void serve(Stream s) {
    s.channel().pipeline().addLast(new ChannelInboundHandlerAdapter() {
      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ctx.write(msg);
      }

      @Override
      public void channelReadComplete(ChannelHandlerContext ctx) {
        ctx.flush();
      }

      @Override
      public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
          ctx.flush();
          s.closeWrite();
        }
      }
    });
  }

  /** Sends {@code bytes} seeded random bytes, half-closes, and completes with whether the echo matched. */
  public static CompletableFuture<Boolean> roundTrip(Stream s, int bytes, long seed) {
    CompletableFuture<Boolean> ok = new CompletableFuture<>();
    MessageDigest sent = sha();
    MessageDigest got = sha();
    long[] received = {0};
    s.channel().pipeline().addLast(new ChannelInboundHandlerAdapter() {
      @Override
      public void handlerAdded(ChannelHandlerContext ctx) {
        SplittableRandom r = new SplittableRandom(seed);
        int chunk = 256 * 1024;
        for (int off = 0; off < bytes; off += chunk) {
          byte[] b = new byte[Math.min(chunk, bytes - off)];
          r.nextBytes(b);
          sent.update(b);
          ctx.write(Unpooled.wrappedBuffer(b));
        }
        ctx.flush();
        s.closeWrite();
      }

      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf b = (ByteBuf) msg;
        received[0] += b.readableBytes();
        got.update(b.nioBuffer());
        b.release();
      }

      @Override
      public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
          ok.complete(received[0] == bytes && MessageDigest.isEqual(sent.digest(), got.digest()));
          ctx.close();
        }
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        ok.complete(false);
      }
    });
    return ok;
  }

  private static MessageDigest sha() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
