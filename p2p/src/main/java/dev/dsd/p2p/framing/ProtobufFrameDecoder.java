package dev.dsd.p2p.framing;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.DecoderException;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * The control phase of a stream that later carries other bytes (circuit relay's hop and stop
 * streams become connections, DCUtR's stream is plain RPC):
 *
 * <pre>
 *   | uvarint(len) | protobuf message (len bytes, at most maxMessage) | ... | then raw bytes
 * </pre>
 *
 * Each whole message is parsed and handed to {@code onMessage} on the event loop. Whoever decides
 * that the control phase is over adds the next handler after this one and calls {@link #leave()}:
 * bytes that arrived behind the last message go to that handler, none are lost. A length over the
 * limit or a message that is not valid protobuf goes to {@code onError} (a
 * {@link ProtocolViolationException}), and nothing more is read.
 */
public final class ProtobufFrameDecoder<T extends MessageLite> extends ByteToMessageDecoder {
  private final Parser<T> parser;
  private final int maxMessage;
  private final BiConsumer<ChannelHandlerContext, T> onMessage;
  private final BiConsumer<ChannelHandlerContext, Throwable> onError;
  private ChannelHandlerContext ctx;
  private boolean failed;

  public ProtobufFrameDecoder(Parser<T> parser, int maxMessage, BiConsumer<ChannelHandlerContext, T> onMessage,
      BiConsumer<ChannelHandlerContext, Throwable> onError) {
    this.parser = parser;
    this.maxMessage = maxMessage;
    this.onMessage = onMessage;
    this.onError = onError;
  }

  /** Frames one message: its uvarint length, then its bytes. */
  public static ByteBuf encode(MessageLite m) {
    byte[] b = m.toByteArray();
    ByteBuf out = Unpooled.buffer(b.length + 5);
    Varint.write(out, b.length);
    out.writeBytes(b);
    return out;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  /** Ends the control phase: this handler leaves, bytes already received go to the next handler. */
  public void leave() {
    if (ctx != null && !ctx.isRemoved()) {
      ctx.pipeline().remove(this);
    }
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (!failed && !ctx.isRemoved() && in.isReadable()) {
      int start = in.readerIndex();
      long len = Varint.read(in);
      if (len == Varint.NEED_MORE) {
        return;
      }
      if (len > maxMessage) {
        throw new LimitExceededException("protobuf message of bytes", len, maxMessage);
      }
      if (in.readableBytes() < len) {
        in.readerIndex(start);
        return;
      }
      byte[] b = new byte[(int) len];
      in.readBytes(b);
      T m;
      try {
        m = parser.parseFrom(b);
      } catch (InvalidProtocolBufferException e) {
        throw new ProtocolViolationException("malformed message: " + e.getMessage(), e);
      }
      onMessage.accept(ctx, m);
    }
    if (failed) {
      in.skipBytes(in.readableBytes());
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    if (!failed) {
      failed = true;
      onError.accept(ctx, c);
    }
  }
}
