package dev.dsd.p2p.yamux;

import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.ProtocolViolationException;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.DecoderException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The yamux multiplexer of one connection ({@code /yamux/1.0.0}): opens and accepts streams as
 * {@link YamuxStreamChannel}s, routes frames to them, answers pings and sends GO_AWAY on close.
 * The dialer uses odd stream ids, the listener even ones. Limits: {@link #MAX_STREAMS} streams per
 * connection (further SYNs are answered with RST); a DATA frame beyond the stream's receive window,
 * a SYN for a live stream or a stream id of the wrong parity is a protocol violation that ends the
 * connection with GO_AWAY(protocol error).
 */
public final class YamuxSession extends ChannelDuplexHandler {
  private static final Logger log = LoggerFactory.getLogger(YamuxSession.class);
  public static final String PROTOCOL_ID = "/yamux/1.0.0";
  public static final int INITIAL_WINDOW = 256 * 1024;
  public static final int MAX_SEND_FRAME = 64 * 1024;
  public static final int MAX_STREAMS = 1024;
  /** How long a stream we closed waits for the remote's FIN before it is reset and forgotten. */
  public static final long LINGER_MILLIS = 30_000;

  private final boolean initiator;
  private final Consumer<YamuxStreamChannel> acceptor;
  private final Map<Integer, YamuxStreamChannel> streams = new HashMap<>();
  private final Map<Long, Object[]> pings = new HashMap<>(); // opaque -> {start nanos, future}
  private ChannelHandlerContext ctx;
  private int nextId;
  private final CompletableFuture<Long> goAway = new CompletableFuture<>();
  private boolean goAwayReceived;
  private boolean goAwaySent;
  // wall-clock millis of the first stream either side opened, 0 before: how long a relayed
  // connection was in use before it became direct (DCUtR's goal is measured from here)
  private volatile long firstStreamMillis;

  /**
   * @param initiator whether this side dialed the connection
   * @param acceptor sets up the pipeline of each stream the remote opens (before it is registered)
   */
  public YamuxSession(boolean initiator, Consumer<YamuxStreamChannel> acceptor) {
    this.initiator = initiator;
    this.acceptor = acceptor;
    this.nextId = initiator ? 1 : 2;
  }

  Channel connection() {
    return ctx.channel();
  }

  public int streamCount() {
    return streams.size();
  }

  /** When the first stream (opened by either side) began, in epoch milliseconds; 0 while none has. */
  public long firstStreamMillis() {
    return firstStreamMillis;
  }

  private void streamOpened() {
    if (firstStreamMillis == 0) {
      firstStreamMillis = System.currentTimeMillis();
    }
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  /** Opens a stream; {@code init} sets up its pipeline before it becomes active. Any thread. */
  public CompletableFuture<YamuxStreamChannel> openStream(Consumer<Channel> init) {
    CompletableFuture<YamuxStreamChannel> f = new CompletableFuture<>();
    ctx.executor().execute(() -> {
      try {
        if (goAwayReceived || goAwaySent || !ctx.channel().isActive()) {
          throw new P2pException("connection is closing; no new streams");
        }
        if (streams.size() >= MAX_STREAMS) {
          throw new dev.dsd.p2p.core.LimitExceededException("yamux streams", streams.size() + 1, MAX_STREAMS);
        }
        int id = nextId;
        nextId += 2;
        YamuxStreamChannel child = new YamuxStreamChannel(this, id);
        streams.put(id, child);
        streamOpened();
        init.accept(child);
        writeFrame(YamuxFrame.windowUpdate(id, YamuxFrame.SYN, 0));
        flush();
        ctx.channel().eventLoop().register(child).addListener(r -> {
          if (r.isSuccess()) {
            f.complete(child);
          } else {
            f.completeExceptionally(r.cause());
          }
        });
      } catch (RuntimeException e) {
        f.completeExceptionally(e);
      }
    });
    return f;
  }

  /**
   * Completes with the error code when the remote sends GO_AWAY: it opens no more streams and
   * accepts none, so the connection is only good for the streams already open.
   */
  public CompletableFuture<Long> goAwayReceived() {
    return goAway;
  }

  /** Round-trip time of a yamux ping, in nanoseconds. */
  public CompletableFuture<Long> ping() {
    CompletableFuture<Long> f = new CompletableFuture<>();
    ctx.executor().execute(() -> {
      long opaque = ThreadLocalRandom.current().nextLong(1L << 32);
      pings.put(opaque, new Object[] {System.nanoTime(), f});
      ctx.writeAndFlush(new YamuxFrame(YamuxFrame.PING, YamuxFrame.SYN, 0, opaque, null));
    });
    return f;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof YamuxFrame f)) {
      ctx.fireChannelRead(msg);
      return;
    }
    switch (f.type()) {
      case YamuxFrame.PING -> onPing(f);
      case YamuxFrame.GO_AWAY -> {
        goAwayReceived = true;
        log.debug("yamux go-away from {} code={}", ctx.channel().remoteAddress(), f.length());
        goAway.complete(f.length());
      }
      default -> onStreamFrame(f);
    }
  }

  private void onPing(YamuxFrame f) {
    if (f.has(YamuxFrame.SYN)) {
      ctx.writeAndFlush(new YamuxFrame(YamuxFrame.PING, YamuxFrame.ACK, 0, f.length(), null));
    } else if (f.has(YamuxFrame.ACK)) {
      Object[] p = pings.remove(f.length());
      if (p != null) {
        @SuppressWarnings("unchecked")
        CompletableFuture<Long> fut = (CompletableFuture<Long>) p[1];
        fut.complete(System.nanoTime() - (long) p[0]);
      }
    }
  }

  private void onStreamFrame(YamuxFrame f) {
    int id = f.streamId();
    if (id == 0) {
      f.release();
      throw new ProtocolViolationException("yamux " + (f.type() == 0 ? "data" : "window update") + " on stream 0");
    }
    YamuxStreamChannel s = streams.get(id);
    if (f.has(YamuxFrame.SYN)) {
      if (s != null) {
        f.release();
        throw new ProtocolViolationException("yamux SYN for stream " + id + ", which is open");
      }
      boolean remoteIsDialer = !initiator;
      if ((id % 2 == 1) != remoteIsDialer) {
        f.release();
        throw new ProtocolViolationException("yamux stream id " + id + " has the wrong parity for the "
            + (remoteIsDialer ? "dialer" : "listener"));
      }
      if (streams.size() >= MAX_STREAMS || goAwaySent) {
        f.release();
        writeFrame(YamuxFrame.windowUpdate(id, YamuxFrame.RST, 0));
        flush();
        log.debug("yamux refused stream {}: {} open, limit {}", id, streams.size(), MAX_STREAMS);
        return;
      }
      s = new YamuxStreamChannel(this, id);
      streams.put(id, s);
      streamOpened();
      acceptor.accept(s);
      writeFrame(YamuxFrame.windowUpdate(id, YamuxFrame.ACK, 0));
      flush();
      ctx.channel().eventLoop().register(s);
    }
    if (s == null) {
      f.release(); // a late frame for a stream already forgotten
      return;
    }
    if (f.type() == YamuxFrame.WINDOW_UPDATE) {
      s.onWindowUpdate(f.length());
    } else if (f.data() != null) {
      if (f.length() > s.receiveWindow) {
        f.release();
        throw new ProtocolViolationException("yamux stream " + id + " sent " + f.length()
            + " bytes beyond its receive window of " + s.receiveWindow);
      }
      s.onData(f.data());
    }
    if (f.has(YamuxFrame.RST)) {
      streams.remove(id);
      s.onReset();
    } else if (f.has(YamuxFrame.FIN)) {
      s.onRemoteFin();
      if (!s.isOpen()) {
        streams.remove(id);
      }
    }
  }

  void writeFrame(YamuxFrame f) {
    ctx.write(f);
  }

  void flush() {
    ctx.flush();
  }

  /** A stream's channel closed locally: FIN if not yet sent; forget it once the remote is done too. */
  void streamClosed(YamuxStreamChannel s) {
    if (!streams.containsKey(s.streamId()) || !ctx.channel().isActive()) {
      streams.remove(s.streamId());
      return;
    }
    if (!s.finSent()) {
      writeFrame(YamuxFrame.windowUpdate(s.streamId(), YamuxFrame.FIN, 0));
      flush();
    }
    if (s.remoteFin) {
      streams.remove(s.streamId());
    } else {
      ctx.executor().schedule(() -> {
        if (streams.remove(s.streamId(), s)) {
          writeFrame(YamuxFrame.windowUpdate(s.streamId(), YamuxFrame.RST, 0));
          flush();
        }
      }, LINGER_MILLIS, TimeUnit.MILLISECONDS);
    }
  }

  @Override
  public void close(ChannelHandlerContext ctx, ChannelPromise promise) {
    goAway(YamuxFrame.GO_AWAY_NORMAL);
    ctx.close(promise);
  }

  private void goAway(int code) {
    if (!goAwaySent && ctx.channel().isActive()) {
      goAwaySent = true;
      ctx.writeAndFlush(new YamuxFrame(YamuxFrame.GO_AWAY, 0, 0, code, null));
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    for (YamuxStreamChannel s : List.copyOf(streams.values())) {
      s.onReset();
    }
    streams.clear();
    pings.values().forEach(p -> ((CompletableFuture<?>) p[1]).completeExceptionally(
        new P2pException("connection closed")));
    pings.clear();
    goAway.completeExceptionally(new P2pException("connection closed"));
    super.channelInactive(ctx);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    log.info("yamux connection {} closed: {}", ctx.channel().remoteAddress(), c.getMessage());
    if (c instanceof ProtocolViolationException) {
      goAway(YamuxFrame.GO_AWAY_PROTOCOL_ERROR);
    }
    ctx.close();
  }
}
