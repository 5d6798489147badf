package dev.dsd.p2p.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.concurrent.CompletableFuture;

/**
 * Writes {@code total} bytes as fast as the channel accepts them (respecting writability, so
 * memory stays bounded), then calls {@code onSent}; completes when the receiver's 8-byte count arrives.
 */
final class BulkSender extends ChannelInboundHandlerAdapter {
  private static final ByteBuf CHUNK = Unpooled.unreleasableBuffer(Unpooled.directBuffer(64 * 1024).writeZero(64 * 1024));
  private final long total;
  private final Runnable onSent;
  final CompletableFuture<Long> acknowledged = new CompletableFuture<>();
  private long sent;
  private final ByteBuf ack = Unpooled.buffer(8);

  BulkSender(long total, Runnable onSent) {
    this.total = total;
    this.onSent = onSent;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    if (ctx.channel().isActive()) {
      pump(ctx);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    pump(ctx);
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    pump(ctx);
  }

  private void pump(ChannelHandlerContext ctx) {
    while (sent < total && ctx.channel().isWritable()) {
      int n = (int) Math.min(CHUNK.capacity(), total - sent);
      ctx.write(CHUNK.retainedSlice(0, n));
      sent += n;
    }
    ctx.flush();
    if (sent >= total && sent > 0) {
      sent = Long.MAX_VALUE; // once
      onSent.run();
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf b = (ByteBuf) msg;
    ack.writeBytes(b, Math.min(b.readableBytes(), ack.writableBytes()));
    b.release();
    if (ack.readableBytes() == 8) {
      acknowledged.complete(ack.readLong());
    }
  }
}
