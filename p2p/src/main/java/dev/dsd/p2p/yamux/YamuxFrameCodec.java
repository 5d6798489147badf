package dev.dsd.p2p.yamux;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.ProtocolViolationException;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageCodec;
import java.util.List;

/**
 * Yamux frames to and from bytes (see {@link YamuxFrame} for the layout). A DATA frame longer than
 * {@link #MAX_DATA} or an unknown version or type closes the connection with a typed error; the
 * per-stream receive window is enforced by {@link YamuxSession}.
 */
public final class YamuxFrameCodec extends ByteToMessageCodec<YamuxFrame> {
  /** Largest DATA payload accepted in one frame (js sends at most 64 KiB; windows cap it anyway). */
  public static final int MAX_DATA = 1 << 20;

  @Override
  protected void encode(ChannelHandlerContext ctx, YamuxFrame f, ByteBuf out) {
    try {
      out.writeByte(0);
      out.writeByte(f.type());
      out.writeShort(f.flags());
      out.writeInt(f.streamId());
      out.writeInt((int) f.length());
      if (f.data() != null) {
        out.writeBytes(f.data());
      }
    } finally {
      f.release();
    }
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (in.readableBytes() >= YamuxFrame.HEADER) {
      int at = in.readerIndex();
      int version = in.getUnsignedByte(at);
      int type = in.getUnsignedByte(at + 1);
      if (version != 0) {
        throw new ProtocolViolationException("yamux version " + version + " (expected 0)");
      }
      if (type > YamuxFrame.GO_AWAY) {
        throw new ProtocolViolationException("yamux frame type " + type + " is unknown");
      }
      long length = in.getUnsignedInt(at + 8);
      if (type == YamuxFrame.DATA) {
        if (length > MAX_DATA) {
          throw new LimitExceededException("yamux data frame of bytes", length, MAX_DATA);
        }
        if (in.readableBytes() < YamuxFrame.HEADER + length) {
          return;
        }
      }
      int flags = in.getUnsignedShort(at + 2);
      int stream = in.getInt(at + 4);
      in.skipBytes(YamuxFrame.HEADER);
      ByteBuf data = type == YamuxFrame.DATA ? in.readRetainedSlice((int) length) : null;
      out.add(new YamuxFrame(type, flags, stream, length, data));
    }
  }
}
