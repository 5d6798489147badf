package dev.dsd.p2p.kad;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.FramedReply;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.proto.KadProto.Message;
import io.netty.buffer.Unpooled;
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
      s.channel().pipeline().addLast(VarintFrameEncoder.INSTANCE);
      // also for ADD_PROVIDER: the write completes its answer first, and a completed answer stays as it is
      FramedReply.read(s.channel(), MAX_MESSAGE, KadRpc::parseAnswer, "kad stream closed before an answer")
          .whenComplete((m, e) -> {
            if (e == null) {
              answer.complete(m);
            } else {
              answer.completeExceptionally(e);
            }
          });
      s.channel().writeAndFlush(Unpooled.wrappedBuffer(request.toByteArray())).addListener(f -> {
        if (!expectsAnswer) {
          answer.complete(Message.getDefaultInstance());
          s.closeWrite();
        }
      });
    }).exceptionally(e -> {
      answer.completeExceptionally(e);
      return null;
    });
    return answer.orTimeout(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  private static Message parseAnswer(byte[] bytes) {
    try {
      return Message.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolationException("kad answer is not valid protobuf", e);
    }
  }
}
