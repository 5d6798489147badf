package dev.dsd.p2p.kad;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.VarintFrameDecoder;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.proto.KadProto.Message;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Kademlia requests over libp2p streams: one stream per request, the request and its answer each a
 * varint-prefixed {@link Message}, as js-libp2p does. ADD_PROVIDER gets no answer.
 */
final class KadRpc {
  static final int MAX_MESSAGE = 1 << 20;
  static final Duration TIMEOUT = Duration.ofSeconds(5);

  private KadRpc() {}

  static CompletableFuture<Message> request(NettyHost host, PeerId peer, Message request) {
    CompletableFuture<Message> answer = new CompletableFuture<>();
    boolean expectsAnswer = request.getType() != Message.MessageType.ADD_PROVIDER;
    host.newStream(peer, List.of(KadDht.PROTOCOL), s -> {
      s.channel().pipeline().addLast(new VarintFrameDecoder(MAX_MESSAGE), VarintFrameEncoder.INSTANCE,
          new ChannelInboundHandlerAdapter() {
            @Override
            public void handlerAdded(ChannelHandlerContext ctx) {
              ctx.writeAndFlush(Unpooled.wrappedBuffer(request.toByteArray())).addListener(f -> {
                if (!expectsAnswer) {
                  answer.complete(Message.getDefaultInstance());
                  s.closeWrite();
                }
              });
            }

            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
              ByteBuf b = (ByteBuf) msg;
              try {
                answer.complete(Message.parseFrom(ByteBufUtil.getBytes(b)));
              } catch (InvalidProtocolBufferException e) {
                answer.completeExceptionally(new ProtocolViolationException("kad answer is not valid protobuf", e));
              } finally {
                b.release();
                ctx.close();
              }
            }

            @Override
            public void channelInactive(ChannelHandlerContext ctx) {
              answer.completeExceptionally(new ProtocolViolationException("kad stream closed before an answer"));
            }

            @Override
            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
              answer.completeExceptionally(cause);
              ctx.close();
            }
          });
    }).exceptionally(e -> {
      answer.completeExceptionally(e);
      return null;
    });
    return answer.orTimeout(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }
}
