package dev.dsd.node.wire;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * A stream written byte by byte, to send what a well-behaved peer never would: garbage, frames
 * whose length prefix lies, half a frame. What comes back is read as the protocol's own frames
 * and handed to {@code events} as {@link Reply}, {@link Unreadable} or, once, {@link Closed}.
 */
public final class RawStream<M extends MessageLite> implements AutoCloseable {
  /** A well-formed frame from the remote. */
  public record Reply<M>(M message) {}

  /** A frame from the remote that is not a message of the protocol: the remote is at fault. */
  public record Unreadable(String why) {}

  /** The remote ended the stream (FIN or reset); nothing follows. */
  public record Closed(RawStream<?> stream) {}

  private final Stream stream;
  private final Parser<M> parser;
  private final Consumer<Object> events;
  private final AtomicBoolean closed = new AtomicBoolean();

  private RawStream(Stream stream, Parser<M> parser, Consumer<Object> events) {
    this.stream = stream;
    this.parser = parser;
    this.events = events;
  }

  /** Dials {@code to} and negotiates {@code protocol}; the stream is ready when this returns. */
  public static <M extends MessageLite> RawStream<M> open(NettyHost from, PeerId to, List<Multiaddr> addrs,
      String protocol, Parser<M> parser, Consumer<Object> events, Duration timeout) throws Exception {
    from.peerStore().addAddrs(to, addrs);
    RawStream<?>[] box = new RawStream<?>[1];
    from.newStream(to, List.of(protocol), st -> {
      RawStream<M> raw = new RawStream<>(st, parser, events);
      st.channel().pipeline().addLast(raw.new Inbound());
      box[0] = raw;
    }).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    @SuppressWarnings("unchecked")
    RawStream<M> raw = (RawStream<M>) box[0];
    return raw;
  }

  /** The unsigned-varint length prefix and the body, as the protocols frame messages. */
  public static byte[] frame(byte[] body) {
    return concat(Varint.encode(body.length), body);
  }

  public static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  public void write(byte[] bytes) {
    stream.channel().writeAndFlush(Unpooled.wrappedBuffer(bytes));
  }

  public void send(M message) {
    write(frame(message.toByteArray()));
  }

  /** Half-closes: says nothing more will come, as a peer that gave up mid-frame would. */
  public void finish() {
    stream.closeWrite();
  }

  /** True once the remote ended the stream. */
  public boolean isClosed() {
    return closed.get();
  }

  public PeerId remote() {
    return stream.remotePeer();
  }

  @Override
  public void close() {
    stream.channel().close();
  }

  private void ended() {
    if (closed.compareAndSet(false, true)) {
      events.accept(new Closed(this));
    }
  }

  private final class Inbound extends ChannelInboundHandlerAdapter {
    private ByteBuf pending = Unpooled.buffer();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf in = (ByteBuf) msg;
      try {
        pending.writeBytes(in);
      } finally {
        in.release();
      }
      while (pending.isReadable()) {
        int start = pending.readerIndex();
        long len;
        try {
          len = Varint.read(pending);
        } catch (RuntimeException e) {
          events.accept(new Unreadable("length prefix: " + e.getMessage()));
          pending.clear();
          return;
        }
        if (len == Varint.NEED_MORE || pending.readableBytes() < len) {
          pending.readerIndex(start);
          break;
        }
        byte[] body = new byte[(int) len];
        pending.readBytes(body);
        try {
          events.accept(new Reply<>(parser.parseFrom(body)));
        } catch (InvalidProtocolBufferException e) {
          events.accept(new Unreadable("body: " + e.getMessage()));
        }
      }
      pending.discardReadBytes();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        ended(); // the remote closes with a FIN first; its reset comes much later
        ctx.close();
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      ended();
      pending.release();
      pending = Unpooled.EMPTY_BUFFER;
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }
}
