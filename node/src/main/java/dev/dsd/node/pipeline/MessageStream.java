package dev.dsd.node.pipeline;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.framing.VarintFrameDecoder;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.Stream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@code /dsd/pipeline/1.0.0} stream: varint-framed {@link PipelineMessage}s both ways. Messages
 * are handed to the listener in order on the stream's own {@link SerialExecutor}, never on the
 * network thread, because handling a round runs the model.
 */
final class MessageStream {
  interface Listener {
    void onMessage(MessageStream stream, PipelineMessage message);

    /** The stream ended: {@code cause} null for a clean close by either side. Called once. */
    void onClosed(MessageStream stream, Throwable cause);
  }

  private final Stream stream;
  private final SerialExecutor serial;
  private final AtomicLong bytesSent = new AtomicLong();
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile Listener listener;

  private MessageStream(Stream stream, Executor pool, Listener listener) {
    this.stream = stream;
    this.serial = new SerialExecutor(pool);
    this.listener = listener;
  }

  /** Installs the codec on a freshly negotiated stream; call from a StreamHandler. */
  static MessageStream attach(Stream stream, Executor pool, Listener listener) {
    MessageStream ms = new MessageStream(stream, pool, listener);
    stream.channel().pipeline().addLast(new VarintFrameDecoder(PipelineProtocol.MAX_FRAME_BYTES),
        VarintFrameEncoder.INSTANCE, ms.new Inbound());
    return ms;
  }

  PeerId remote() {
    return stream.remotePeer();
  }

  /** Redirects later messages, e.g. once the first message said what this stream is for. */
  void listener(Listener l) {
    this.listener = l;
  }

  long bytesSent() {
    return bytesSent.get();
  }

  boolean isOpen() {
    return !closed.get() && stream.channel().isActive();
  }

  /** Sends a message; returns its size on the wire (0 when the stream is already gone). */
  int send(PipelineMessage m) {
    if (!isOpen()) {
      return 0;
    }
    byte[] body = m.toByteArray();
    int size = body.length + dev.dsd.p2p.core.Varint.size(body.length);
    bytesSent.addAndGet(size);
    stream.channel().writeAndFlush(Unpooled.wrappedBuffer(body));
    return size;
  }

  void close() {
    stream.channel().close();
  }

  private void closed(Throwable cause) {
    if (closed.compareAndSet(false, true)) {
      serial.execute(() -> listener.onClosed(this, cause));
    }
  }

  private final class Inbound extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf frame = (ByteBuf) msg;
      PipelineMessage m;
      try {
        m = PipelineMessage.parseFrom(ByteBufUtil.getBytes(frame));
      } catch (InvalidProtocolBufferException e) {
        send(PipelineProtocol.error(dev.dsd.node.pipeline.proto.Error.Code.BAD_REQUEST, "",
            "malformed pipeline message: " + e.getMessage()));
        ctx.close();
        closed(e);
        return;
      } finally {
        frame.release();
      }
      serial.execute(() -> listener.onMessage(MessageStream.this, m));
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      closed(null);
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (PipelineProtocol.causedBy(cause, dev.dsd.p2p.core.LimitExceededException.class)) {
        send(PipelineProtocol.error(dev.dsd.node.pipeline.proto.Error.Code.LIMIT, "", cause.getMessage()));
      }
      ctx.close();
      closed(cause);
    }
  }
}
