package dev.dsd.p2p.framing;

import dev.dsd.p2p.core.Varint;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToByteEncoder;

/** Prefixes each outbound message with its unsigned-varint length. */
@ChannelHandler.Sharable
public final class VarintFrameEncoder extends MessageToByteEncoder<ByteBuf> {
  public static final VarintFrameEncoder INSTANCE = new VarintFrameEncoder();

  @Override
  protected void encode(ChannelHandlerContext ctx, ByteBuf msg, ByteBuf out) {
    Varint.write(out, msg.readableBytes());
    out.writeBytes(msg);
  }
}
