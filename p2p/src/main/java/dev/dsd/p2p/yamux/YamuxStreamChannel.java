package dev.dsd.p2p.yamux;

import io.netty.buffer.ByteBuf;
import io.netty.channel.AbstractChannel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelMetadata;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ChannelPromise;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.ChannelInputShutdownReadComplete;
import java.net.SocketAddress;
import java.util.ArrayDeque;

/**
 * One yamux stream as a Netty channel, so each stream gets its own pipeline (protocol negotiation,
 * framing, application handler), as HTTP/2 streams do in Netty.
 *
 * <p>Flow control: the remote may send at most the receive window; bytes are handed to the
 * pipeline when it reads (auto-read or {@code read()}), and only then is the window reopened, so a
 * slow reader holds at most one window in memory. Writes go out as the remote's window allows and
 * wait in the outbound buffer otherwise. {@link #shutdownOutput()} sends FIN (half-close); the
 * remote's FIN arrives as a {@link ChannelInputShutdownEvent}. Once both FINs have gone (ours sent,
 * theirs delivered) the channel closes itself, so a finished stream is gone on both sides. Runs on
 * the connection's event loop.
 */
public final class YamuxStreamChannel extends AbstractChannel {
  private static final ChannelMetadata METADATA = new ChannelMetadata(false);

  private final int id;
  private final YamuxSession session;
  private final ChannelConfig config = new DefaultChannelConfig(this);
  private final ArrayDeque<ByteBuf> inbound = new ArrayDeque<>();
  private boolean open = true;
  private boolean registered;
  private boolean readPending;
  long sendWindow = YamuxSession.INITIAL_WINDOW;
  long receiveWindow = YamuxSession.INITIAL_WINDOW;
  private long consumed;
  private boolean finRequested;
  private boolean finSent;
  boolean remoteFin;
  private boolean inputShutdownFired;

  YamuxStreamChannel(YamuxSession session, int id) {
    super(session.connection());
    this.session = session;
    this.id = id;
  }

  public int streamId() {
    return id;
  }

  @Override
  public ChannelConfig config() {
    return config;
  }

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public boolean isActive() {
    return open && registered;
  }

  @Override
  public ChannelMetadata metadata() {
    return METADATA;
  }

  @Override
  protected AbstractUnsafe newUnsafe() {
    return new AbstractUnsafe() {
      @Override
      public void connect(SocketAddress remote, SocketAddress local, ChannelPromise promise) {
        promise.setFailure(new UnsupportedOperationException("yamux streams are opened by YamuxSession"));
      }
    };
  }

  @Override
  protected boolean isCompatible(EventLoop loop) {
    return true;
  }

  @Override
  protected SocketAddress localAddress0() {
    return parent().localAddress();
  }

  @Override
  protected SocketAddress remoteAddress0() {
    return parent().remoteAddress();
  }

  @Override
  protected void doRegister(ChannelPromise promise) {
    registered = true;
    promise.setSuccess();
  }

  @Override
  protected void doBind(SocketAddress localAddress) {
    throw new UnsupportedOperationException("yamux streams cannot bind");
  }

  @Override
  protected void doDisconnect() {
    doClose();
  }

  @Override
  protected void doClose() {
    if (!open) {
      return;
    }
    open = false;
    inbound.forEach(ByteBuf::release);
    inbound.clear();
    session.streamClosed(this);
  }

  /** Sends FIN once everything written before has gone out; reading continues. */
  public void shutdownOutput() {
    if (eventLoop().inEventLoop()) {
      finRequested = true;
      trySendFin();
    } else {
      eventLoop().execute(this::shutdownOutput);
    }
  }

  boolean finSent() {
    return finSent;
  }

  private void trySendFin() {
    if (finRequested && !finSent && open && (unsafe().outboundBuffer() == null || unsafe().outboundBuffer().isEmpty())) {
      finSent = true;
      session.writeFrame(YamuxFrame.windowUpdate(id, YamuxFrame.FIN, 0));
      session.flush();
      closeIfDone();
    }
  }

  /**
   * Both directions have ended: nothing can flow any more, so the stream is gone on this side too
   * (its handlers see channelInactive and the session forgets it). Without this a stream whose
   * handler only half-closed stayed in the session's map until the connection ended.
   */
  private void closeIfDone() {
    if (finSent && inputShutdownFired && open) {
      close();
    }
  }

  @Override
  protected void doBeginRead() {
    readPending = true;
    deliver();
  }

  @Override
  protected void doWrite(ChannelOutboundBuffer in) {
    boolean wrote = false;
    while (true) {
      Object msg = in.current();
      if (msg == null) {
        break;
      }
      if (!(msg instanceof ByteBuf buf)) {
        in.remove(new UnsupportedOperationException("yamux streams carry ByteBuf, not " + msg.getClass()));
        continue;
      }
      if (!buf.isReadable()) {
        in.remove();
        continue;
      }
      if (sendWindow <= 0) {
        break; // resumed by the remote's WINDOW_UPDATE
      }
      int n = (int) Math.min(Math.min(buf.readableBytes(), sendWindow), YamuxSession.MAX_SEND_FRAME);
      session.writeFrame(YamuxFrame.data(id, 0, buf.readRetainedSlice(n)));
      sendWindow -= n;
      wrote = true;
      if (!buf.isReadable()) {
        in.remove();
      }
    }
    if (wrote) {
      session.flush();
    }
    trySendFin();
  }

  /** The remote sent data (already checked against the window). */
  void onData(ByteBuf data) {
    receiveWindow -= data.readableBytes();
    if (!open) {
      credit(data.readableBytes()); // nobody reads any more: keep the remote from stalling
      data.release();
      return;
    }
    inbound.add(data);
    if (readPending) {
      deliver();
    }
  }

  void onWindowUpdate(long delta) {
    sendWindow += delta;
    if (open && registered && unsafe().outboundBuffer() != null && !unsafe().outboundBuffer().isEmpty()) {
      flush();
    }
  }

  void onRemoteFin() {
    remoteFin = true;
    if (readPending || inbound.isEmpty()) {
      deliver();
    }
  }

  private void deliver() {
    if (!open || !registered) {
      return;
    }
    boolean any = false;
    while (!inbound.isEmpty()) {
      ByteBuf b = inbound.poll();
      consumed += b.readableBytes();
      any = true;
      pipeline().fireChannelRead(b);
    }
    if (any) {
      readPending = false;
      pipeline().fireChannelReadComplete();
      if (consumed >= YamuxSession.INITIAL_WINDOW / 2) {
        credit(consumed);
        consumed = 0;
      }
    }
    if (remoteFin && inbound.isEmpty() && !inputShutdownFired && open) {
      inputShutdownFired = true;
      pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
      pipeline().fireUserEventTriggered(ChannelInputShutdownReadComplete.INSTANCE);
      closeIfDone();
    }
  }

  private void credit(long bytes) {
    receiveWindow += bytes;
    session.writeFrame(YamuxFrame.windowUpdate(id, 0, bytes));
    session.flush();
  }

  /** The remote reset the stream, or the connection went away. */
  void onReset() {
    if (open) {
      close();
    }
  }
}
