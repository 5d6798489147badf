package dev.dsd.testnet;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.ArrayDeque;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Forwards what one side of a relayed connection reads to the other side, late: each chunk is
 * released at {@code max(previous release, arrival + latency ± jitter) + serialization time}, so
 * jitter never reorders bytes and the rate limit queues like a real link. While more than
 * {@link LinkProfile#MAX_QUEUED_BYTES} wait, reading from the source pauses.
 */
final class DelayedForwarder extends ChannelInboundHandlerAdapter {
  private record Pending(ByteBuf buf, long releaseNanos) {}

  private final Channel peer;
  private final LinkProfile profile;
  private final SplittableRandom random;
  // One FIFO and one drain task per direction: scheduling each chunk on its own could reorder chunks
  // whose deadlines are equal or nearly so.
  private final ArrayDeque<Pending> queue = new ArrayDeque<>();
  private boolean drainScheduled;
  private long lastReleaseNanos;
  private long queuedBytes;
  private boolean sourceClosed;

  DelayedForwarder(Channel peer, LinkProfile profile, long seed) {
    this.peer = peer;
    this.profile = profile;
    this.random = new SplittableRandom(seed);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf buf = (ByteBuf) msg;
    int bytes = buf.readableBytes();
    long now = System.nanoTime();
    double jitter = profile.jitterMillis() == 0 ? 0 : (random.nextDouble() * 2 - 1) * profile.jitterMillis();
    long arrive = now + (long) (Math.max(0, profile.latencyMillis() + jitter) * 1_000_000);
    long release = Math.max(lastReleaseNanos, arrive) + profile.serializationNanos(bytes);
    lastReleaseNanos = release;
    queuedBytes += bytes;
    queue.addLast(new Pending(buf, release));
    if (queuedBytes > LinkProfile.MAX_QUEUED_BYTES) {
      ctx.channel().config().setAutoRead(false);
    }
    scheduleDrain(ctx);
  }

  private void scheduleDrain(ChannelHandlerContext ctx) {
    if (drainScheduled || queue.isEmpty()) {
      return;
    }
    drainScheduled = true;
    long delay = Math.max(0, queue.peekFirst().releaseNanos() - System.nanoTime());
    ctx.executor().schedule(() -> drain(ctx), delay, TimeUnit.NANOSECONDS);
  }

  private void drain(ChannelHandlerContext ctx) {
    drainScheduled = false;
    long now = System.nanoTime();
    boolean wrote = false;
    while (!queue.isEmpty() && queue.peekFirst().releaseNanos() <= now) {
      Pending p = queue.pollFirst();
      queuedBytes -= p.buf().readableBytes();
      if (peer.isActive()) {
        peer.write(p.buf());
        wrote = true;
      } else {
        p.buf().release();
      }
    }
    if (wrote) {
      peer.flush();
    }
    if (!ctx.channel().config().isAutoRead() && queuedBytes <= LinkProfile.MAX_QUEUED_BYTES / 2 && !sourceClosed) {
      ctx.channel().config().setAutoRead(true);
    }
    if (queue.isEmpty() && sourceClosed) {
      peer.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }
    scheduleDrain(ctx);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    // Close the other side only after everything already read has crossed the link.
    sourceClosed = true;
    if (queue.isEmpty()) {
      peer.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    ctx.close();
  }
}
