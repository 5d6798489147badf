package dev.dsd.p2p.framing;

import dev.dsd.p2p.core.ProtocolViolationException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * The asking side of libp2p's one-message exchanges (identify, a Kademlia request): the reply is a
 * single varint-framed protobuf, so the first frame is parsed into a future and the stream closed,
 * as nothing more will come that is wanted.
 */
public final class FramedReply<T> extends ChannelInboundHandlerAdapter {
  private final CompletableFuture<T> reply = new CompletableFuture<>();
  private final Function<byte[], T> parse;
  private final String closedEarly;
  private final boolean closeAfter;

  private FramedReply(Function<byte[], T> parse, String closedEarly, boolean closeAfter) {
    this.parse = parse;
    this.closedEarly = closedEarly;
    this.closeAfter = closeAfter;
  }

  /**
   * Appends a {@link VarintFrameDecoder} refusing frames over {@code maxFrame} bytes and the reader
   * to {@code stream}'s pipeline. The future fails with what {@code parse} throws, with what the
   * pipeline raises (a frame over the limit), or with a {@link ProtocolViolationException} saying
   * {@code closedEarly} when the stream ends before a frame. It has no timeout of its own.
   */
  public static <T> CompletableFuture<T> read(Channel stream, int maxFrame, Function<byte[], T> parse,
      String closedEarly) {
    FramedReply<T> reader = new FramedReply<>(parse, closedEarly, true);
    stream.pipeline().addLast(new VarintFrameDecoder(maxFrame), reader);
    return reader.reply;
  }

  /**
   * The answering side of such an exchange: as {@link #read} but the stream stays open after the
   * request, for the answer; further frames are dropped.
   */
  public static <T> CompletableFuture<T> readKeepOpen(Channel stream, int maxFrame, Function<byte[], T> parse,
      String closedEarly) {
    FramedReply<T> reader = new FramedReply<>(parse, closedEarly, false);
    stream.pipeline().addLast(new VarintFrameDecoder(maxFrame), reader);
    return reader.reply;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ByteBuf frame = (ByteBuf) msg;
    if (reply.isDone()) {
      frame.release(); // only the first frame is wanted
      return;
    }
    try {
      reply.complete(parse.apply(ByteBufUtil.getBytes(frame)));
    } catch (RuntimeException e) {
      reply.completeExceptionally(e);
    } finally {
      frame.release();
      if (closeAfter) {
        ctx.close();
      }
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    // The remote half-closed without a (whole) frame: nothing more will come.
    if (evt instanceof ChannelInputShutdownEvent && reply.completeExceptionally(
        new ProtocolViolationException(closedEarly)) && closeAfter) {
      ctx.close();
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    // after a reply this is a no-op: the future is already complete
    reply.completeExceptionally(new ProtocolViolationException(closedEarly));
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // the answering side of a request that broke the rules keeps the stream to say so
    if (!reply.completeExceptionally(cause) || closeAfter) {
      ctx.close();
    }
  }
}
