package dev.dsd.p2p.multistream;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * multistream-select 1.0 (github.com/multiformats/multistream-select; libp2p connections spec).
 *
 * <pre>
 *   message = uvarint(len) | utf-8 text | '\n'      (len counts the '\n')
 *   both:      "/multistream/1.0.0"
 *   initiator: "/proto/a"           responder: "/proto/a" (accepted) or "na" (try the next)
 * </pre>
 *
 * The initiator sends the header and its first proposal in one write, as js- and go-libp2p do, and
 * one read may hold several messages or half of one. On agreement {@link #result()} completes with
 * the protocol id (its listeners run first, on the event loop, and add the next handler) and this
 * handler leaves the pipeline, handing any bytes that followed to that handler. Limits: {@link #MAX_MESSAGE} bytes per message, {@link #MAX_ATTEMPTS} proposals, and
 * {@link #TIMEOUT} for the whole negotiation.
 */
public final class MultistreamHandler extends ByteToMessageDecoder {
  public static final String HEADER = "/multistream/1.0.0";
  public static final String NA = "na";
  public static final int MAX_MESSAGE = 1024;
  public static final int MAX_ATTEMPTS = 16;
  public static final Duration TIMEOUT = Duration.ofSeconds(10);

  private final boolean initiator;
  private final List<String> proposals; // initiator: in order of preference
  private final Set<String> supported; // responder
  // Created up front: a stream's handlers are added before the stream is registered, and callers
  // attach listeners right away. Completed on the event loop, so listeners run there.
  private final Promise<String> promise = ImmediateEventExecutor.INSTANCE.newPromise();
  private ScheduledFuture<?> timer;
  private boolean headerSeen;
  private int next; // initiator: index of the proposal awaiting an answer
  private int attempts;
  private boolean started;

  private MultistreamHandler(boolean initiator, List<String> proposals, Set<String> supported) {
    this.initiator = initiator;
    this.proposals = proposals;
    this.supported = supported;
  }

  /** Proposes {@code protocols} in order until the remote accepts one. */
  public static MultistreamHandler initiator(List<String> protocols) {
    if (protocols.isEmpty()) {
      throw new IllegalArgumentException("nothing to propose");
    }
    return new MultistreamHandler(true, List.copyOf(protocols), Set.of());
  }

  /** Accepts the first proposal that is in {@code protocols}. */
  public static MultistreamHandler responder(Set<String> protocols) {
    return new MultistreamHandler(false, List.of(), Set.copyOf(protocols));
  }

  public Promise<String> result() {
    return promise;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    timer = ctx.executor().schedule(() -> fail(ctx, new ProtocolViolationException(
        "multistream negotiation did not finish within " + TIMEOUT.toSeconds() + " s")),
        TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    if (ctx.channel().isActive()) {
      start(ctx);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) throws Exception {
    start(ctx);
    super.channelActive(ctx);
  }

  private void start(ChannelHandlerContext ctx) {
    if (started) {
      return;
    }
    started = true;
    ByteBuf out = ctx.alloc().buffer();
    write(out, HEADER);
    if (initiator) {
      write(out, proposals.get(0));
    }
    ctx.writeAndFlush(out);
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (!promise.isDone()) {
      String msg = read(in);
      if (msg == null) {
        return;
      }
      if (!headerSeen) {
        if (!msg.equals(HEADER)) {
          throw new ProtocolViolationException("expected multistream header " + HEADER + ", got '" + msg + "'");
        }
        headerSeen = true;
        continue;
      }
      if (++attempts > MAX_ATTEMPTS) {
        throw new LimitExceededException("multistream proposals", attempts, MAX_ATTEMPTS);
      }
      if (initiator) {
        String proposed = proposals.get(next);
        if (msg.equals(proposed)) {
          succeed(ctx, proposed);
        } else if (msg.equals(NA)) {
          if (++next >= proposals.size()) {
            throw new P2pException("remote supports none of " + proposals);
          }
          ByteBuf b = ctx.alloc().buffer();
          write(b, proposals.get(next));
          ctx.writeAndFlush(b);
        } else {
          throw new ProtocolViolationException("proposed " + proposed + ", remote answered '" + msg + "'");
        }
      } else {
        ByteBuf b = ctx.alloc().buffer();
        if (supported.contains(msg)) {
          write(b, msg);
          ctx.writeAndFlush(b);
          succeed(ctx, msg);
        } else {
          write(b, NA); // also the answer to "ls", which dsd does not list
          ctx.writeAndFlush(b);
        }
      }
    }
  }

  private void succeed(ChannelHandlerContext ctx, String protocol) {
    timer.cancel(false);
    // Listeners run now, on this event loop, and install the next handler; leaving the pipeline
    // afterwards hands bytes that came in the same read to that handler.
    promise.trySuccess(protocol);
    ctx.pipeline().remove(this);
  }

  /** One message, or null when more bytes are needed. */
  static String read(ByteBuf in) {
    int start = in.readerIndex();
    long len = Varint.read(in);
    if (len == Varint.NEED_MORE) {
      return null;
    }
    if (len < 1 || len > MAX_MESSAGE) {
      throw new LimitExceededException("multistream message length", len, MAX_MESSAGE);
    }
    if (in.readableBytes() < len) {
      in.readerIndex(start);
      return null;
    }
    byte[] b = new byte[(int) len];
    in.readBytes(b);
    if (b[b.length - 1] != '\n') {
      throw new ProtocolViolationException("multistream message does not end with a newline");
    }
    return new String(b, 0, b.length - 1, StandardCharsets.UTF_8);
  }

  static void write(ByteBuf out, String msg) {
    byte[] b = (msg + "\n").getBytes(StandardCharsets.UTF_8);
    Varint.write(out, b.length);
    out.writeBytes(b);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    fail(ctx, cause instanceof io.netty.handler.codec.DecoderException && cause.getCause() != null
        ? cause.getCause() : cause);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    fail(ctx, new P2pException("connection closed during multistream negotiation"));
    super.channelInactive(ctx);
  }

  private void fail(ChannelHandlerContext ctx, Throwable cause) {
    if (promise.tryFailure(cause)) {
      timer.cancel(false);
      ctx.close();
    }
  }
}
