package dev.dsd.p2p.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

/** Counts bytes until {@code expected} arrived, then answers with the count (8 bytes) and closes. */
final class CountingSink extends ChannelInboundHandlerAdapter {
  private final long expected;
  private long count;

  CountingSink(long expected) {
    this.expected = expected;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf b = (ByteBuf) msg;
    count += b.readableBytes();
    b.release();
    if (count >= expected) {
      ctx.writeAndFlush(Unpooled.buffer(8).writeLong(count)).addListener(ChannelFutureListener.CLOSE);
    }
  }
}
