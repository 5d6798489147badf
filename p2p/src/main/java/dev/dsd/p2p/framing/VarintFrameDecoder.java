package dev.dsd.p2p.framing;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.Varint;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * Splits a stream into messages prefixed by their unsigned-varint length, as libp2p's application
 * protocols frame protobuf (identify, Kademlia, dsd's pipeline). A length above the maximum raises
 * {@link LimitExceededException} before any of the frame is buffered.
 */
public final class VarintFrameDecoder extends ByteToMessageDecoder {
  private final int maxFrame;

  public VarintFrameDecoder(int maxFrame) {
    this.maxFrame = maxFrame;
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (in.isReadable()) {
      int start = in.readerIndex();
      long len = Varint.read(in);
      if (len == Varint.NEED_MORE) {
        return;
      }
      if (len > maxFrame) {
        throw new LimitExceededException("frame of bytes", len, maxFrame);
      }
      if (in.readableBytes() < len) {
        in.readerIndex(start);
        return;
      }
      out.add(in.readRetainedSlice((int) len));
    }
  }
}
