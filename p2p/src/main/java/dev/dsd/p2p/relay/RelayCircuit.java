package dev.dsd.p2p.relay;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.yamux.YamuxStreamChannel;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One relayed connection on the relay: the source's hop stream and the target's stop stream
 * joined, bytes from each written to the other. Limits (circuit-v2.md "Limit"): at most
 * {@code maxBytes} each way and {@code maxDuration} in all; past either both streams are reset.
 * Backpressure: a side stops reading while the other side's stream cannot take more. A FIN on one
 * side half-closes the other; once both have, or either closes, the circuit is gone.
 */
final class RelayCircuit {
  private static final Logger log = LoggerFactory.getLogger(RelayCircuit.class);

  private final PeerId src;
  private final PeerId dst;
  private final YamuxStreamChannel a;
  private final YamuxStreamChannel b;
  private final long maxBytes;
  private final LongAdder relayed;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Runnable onClose;
  private volatile long ab;
  private volatile long ba;
  private volatile int finishedSides;

  RelayCircuit(PeerId src, YamuxStreamChannel a, PeerId dst, YamuxStreamChannel b, long maxBytes,
      LongAdder relayed, Runnable onClose) {
    this.src = src;
    this.dst = dst;
    this.a = a;
    this.b = b;
    this.maxBytes = maxBytes;
    this.relayed = relayed;
    this.onClose = onClose;
  }

  /** The handler that forwards what {@code from} receives to the other stream. */
  ChannelInboundHandlerAdapter pipe(YamuxStreamChannel from) {
    return new Pipe(from == a);
  }

  void start(Duration maxDuration) {
    a.closeFuture().addListener(f -> close("source closed"));
    b.closeFuture().addListener(f -> close("target closed"));
    if (!maxDuration.isZero()) {
      a.eventLoop().schedule(() -> close("duration limit of " + maxDuration.toSeconds() + " s reached"),
          maxDuration.toMillis(), TimeUnit.MILLISECONDS);
    }
    log.info("relay circuit open src={} dst={} limitBytes={} limitSeconds={}", src, dst, maxBytes,
        maxDuration.toSeconds());
  }

  void close(String why) {
    if (closed.compareAndSet(false, true)) {
      a.close();
      b.close();
      log.info("relay circuit closed src={} dst={} bytesUp={} bytesDown={} reason={}", src, dst, ab, ba, why);
      onClose.run();
    }
  }

  private final class Pipe extends ChannelInboundHandlerAdapter {
    private final boolean fromSource;

    Pipe(boolean fromSource) {
      this.fromSource = fromSource;
    }

    private YamuxStreamChannel other() {
      return fromSource ? b : a;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof ByteBuf buf)) {
        ReferenceCountUtil.release(msg);
        return;
      }
      int n = buf.readableBytes();
      long total = fromSource ? (ab += n) : (ba += n);
      if (maxBytes > 0 && total > maxBytes) {
        buf.release();
        close("data limit of " + maxBytes + " bytes reached " + (fromSource ? "upstream" : "downstream"));
        return;
      }
      relayed.add(n);
      YamuxStreamChannel o = other();
      o.writeAndFlush(buf).addListener(f -> {
        if (!f.isSuccess()) {
          close("write failed: " + f.cause().getMessage());
        }
      });
      if (!o.isWritable()) {
        ctx.channel().config().setAutoRead(false);
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      // this stream drained: the other side, paused while it was full, may read again
      if (ctx.channel().isWritable()) {
        other().config().setAutoRead(true);
      }
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        other().shutdownOutput();
        synchronized (RelayCircuit.this) {
          if (++finishedSides == 2) {
            close("both sides finished");
          }
        }
      }
      ReferenceCountUtil.release(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      close(cause.getMessage());
    }
  }
}
