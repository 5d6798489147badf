package dev.dsd.p2p.noise;

import dev.dsd.p2p.core.ProtocolViolationException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageCodec;
import java.util.List;

/**
 * Noise transport messages after the handshake (libp2p noise spec, "Wire Format"):
 *
 * <pre>
 *   | length: u16 big-endian | ciphertext (plaintext + 16-byte tag) |   length <= 65535
 * </pre>
 *
 * Outbound bytes are cut into frames of at most {@link #MAX_PLAINTEXT} bytes. A frame that fails
 * authentication raises {@link ProtocolViolationException}; the connection is closed by the caller.
 */
public final class NoiseTransportCodec extends ByteToMessageCodec<ByteBuf> {
  public static final int MAX_FRAME = 65535;
  public static final int MAX_PLAINTEXT = MAX_FRAME - CipherState.TAG;

  private final NoiseXX.Transport transport;

  public NoiseTransportCodec(NoiseXX.Transport transport) {
    this.transport = transport;
  }

  @Override
  protected void encode(ChannelHandlerContext ctx, ByteBuf msg, ByteBuf out) {
    while (msg.isReadable()) {
      int n = Math.min(msg.readableBytes(), MAX_PLAINTEXT);
      byte[] plain = new byte[n];
      msg.readBytes(plain);
      byte[] c = transport.encrypt(plain);
      out.writeShort(c.length);
      out.writeBytes(c);
    }
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (in.readableBytes() >= 2) {
      int len = in.getUnsignedShort(in.readerIndex());
      if (in.readableBytes() < 2 + len) {
        return;
      }
      if (len < CipherState.TAG) {
        throw new ProtocolViolationException("noise frame of " + len + " bytes is shorter than its tag");
      }
      in.skipBytes(2);
      byte[] c = ByteBufUtil.getBytes(in, in.readerIndex(), len);
      in.skipBytes(len);
      byte[] p = transport.decrypt(c);
      if (p.length > 0) {
        out.add(ctx.alloc().buffer(p.length).writeBytes(p));
      }
    }
  }
}
