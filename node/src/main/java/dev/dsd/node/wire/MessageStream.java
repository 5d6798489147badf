package dev.dsd.node.wire;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.framing.VarintFrameDecoder;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.Stream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A stream of one of dsd's own protocols: varint-framed protobuf messages of type {@code M} both
 * ways. Messages are handed to the listener in order on the stream's own {@link SerialExecutor},
 * never on the network thread, because handling one may run a model.
 */
public final class MessageStream<M extends MessageLite> {
  public interface Listener<M extends MessageLite> {
    void onMessage(MessageStream<M> stream, M message);

    /** The stream ended: {@code cause} null for a clean close by either side. Called once. */
    void onClosed(MessageStream<M> stream, Throwable cause);
  }

  /** How a protocol reads its frames and words the error it sends before closing on a bad one. */
  public record Codec<M extends MessageLite>(Parser<M> parser, int maxFrameBytes,
      java.util.function.BiFunction<Boolean, String, M> errorReply) {}

  private final Channel channel;
  private final PeerId remote;
  private final Codec<M> codec;
  private final SerialExecutor serial;
  private final AtomicLong bytesSent = new AtomicLong();
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile Listener<M> listener;
  private long bytesReceived; // event loop only, like framedBytes
  private long framedBytes;

  private MessageStream(Channel channel, PeerId remote, Codec<M> codec, Executor pool, Listener<M> listener) {
    this.channel = channel;
    this.remote = remote;
    this.codec = codec;
    this.serial = new SerialExecutor(pool);
    this.listener = listener;
  }

  /** Installs the codec on a freshly negotiated stream; call from a StreamHandler. */
  public static <M extends MessageLite> MessageStream<M> attach(Stream stream, Codec<M> codec, Executor pool,
      Listener<M> listener) {
    return attach(stream.channel(), stream.remotePeer(), codec, pool, listener);
  }

  /**
   * The same on any byte channel, e.g. an in-process channel when a node is a stage of its own
   * route (a libp2p host does not dial itself).
   */
  public static <M extends MessageLite> MessageStream<M> attach(Channel channel, PeerId remote, Codec<M> codec,
      Executor pool, Listener<M> listener) {
    MessageStream<M> ms = new MessageStream<>(channel, remote, codec, pool, listener);
    channel.pipeline().addLast(ms.new Received(), new VarintFrameDecoder(codec.maxFrameBytes()),
        VarintFrameEncoder.INSTANCE, ms.new Inbound());
    return ms;
  }

  public PeerId remote() {
    return remote;
  }

  /** Redirects later messages, e.g. once the first message said what this stream is for. */
  public void listener(Listener<M> l) {
    this.listener = l;
  }

  public long bytesSent() {
    return bytesSent.get();
  }

  public boolean isOpen() {
    return !closed.get() && channel.isActive();
  }

  /** Sends a message; returns its size on the wire (0 when the stream is already gone). */
  public int send(M m) {
    if (!isOpen()) {
      return 0;
    }
    byte[] body = m.toByteArray();
    int size = body.length + dev.dsd.p2p.core.Varint.size(body.length);
    bytesSent.addAndGet(size);
    channel.writeAndFlush(Unpooled.wrappedBuffer(body));
    return size;
  }

  public void close() {
    channel.close();
  }

  private void closed(Throwable cause) {
    if (closed.compareAndSet(false, true)) {
      serial.execute(() -> listener.onClosed(this, cause));
    }
  }

  /** Counts bytes before the decoder, so the end of the stream can tell whether a frame was cut off. */
  private final class Received extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      bytesReceived += ((ByteBuf) msg).readableBytes();
      ctx.fireChannelRead(msg);
    }
  }

  private final class Inbound extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf frame = (ByteBuf) msg;
      // the decoder only passes minimally encoded prefixes, so this is the frame's size on the wire
      framedBytes += frame.readableBytes() + dev.dsd.p2p.core.Varint.size(frame.readableBytes());
      M m;
      try {
        m = codec.parser().parseFrom(ByteBufUtil.getBytes(frame));
      } catch (InvalidProtocolBufferException e) {
        send(codec.errorReply().apply(false, "malformed message: " + e.getMessage()));
        ctx.close();
        closed(e);
        return;
      } finally {
        frame.release();
      }
      serial.execute(() -> listener.onMessage(MessageStream.this, m));
    }

    /**
     * The remote's FIN: dsd's protocols never half-close, so a peer that stops sending is done
     * with the stream. Closing our side too ends its sessions now rather than when the muxer
     * resets the stream much later, and a peer that stopped inside a frame hears why. Queued
     * behind the messages already received, so those are handled (and answered) first.
     */
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        long cut = bytesReceived - framedBytes;
        serial.execute(() -> {
          if (cut > 0) {
            send(codec.errorReply().apply(false, "the stream ended " + cut + " bytes into a frame"));
          }
          channel.close();
        });
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      closed(null);
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      for (Throwable c = cause; c != null; c = c.getCause()) {
        if (c instanceof dev.dsd.p2p.core.LimitExceededException) {
          send(codec.errorReply().apply(true, c.getMessage()));
          break;
        }
        if (c instanceof dev.dsd.p2p.core.ProtocolViolationException) { // a malformed length prefix
          send(codec.errorReply().apply(false, "malformed frame: " + c.getMessage()));
          break;
        }
      }
      ctx.close();
      closed(cause);
    }
  }
}
