package dev.dsd.p2p.identify;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.FramedReply;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.identify.proto.IdentifyProto.Identify;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * libp2p identify ({@code /ipfs/id/1.0.0}): the side that opens the stream reads one
 * varint-prefixed {@link Identify} message that the other side writes before closing; with
 * {@code /ipfs/id/push/1.0.0} the opener writes it instead. The message's public key must match
 * the peer id the connection authenticated, or it is refused.
 */
public final class IdentifyProtocol {
  public static final String ID = "/ipfs/id/1.0.0";
  public static final String PUSH = "/ipfs/id/push/1.0.0";
  public static final String PROTOCOL_VERSION = "ipfs/0.1.0";
  public static final int MAX_MESSAGE = 64 * 1024;

  /** What a remote said about itself. */
  public record Info(PeerId peer, String agentVersion, List<String> protocols, List<Multiaddr> listenAddrs,
      Multiaddr observedAddr) {}

  private IdentifyProtocol() {}

  /** Our message for a stream: observedAddr is the remote's address as this connection sees it. */
  public static Identify message(byte[] publicKeyProto, String agent, List<String> protocols,
      List<Multiaddr> listenAddrs, java.net.SocketAddress remote) {
    Identify.Builder b = Identify.newBuilder().setProtocolVersion(PROTOCOL_VERSION).setAgentVersion(agent)
        .setPublicKey(ByteString.copyFrom(publicKeyProto)).addAllProtocols(protocols);
    listenAddrs.forEach(a -> b.addListenAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
    if (remote instanceof InetSocketAddress isa && isa.getAddress() != null) {
      b.setObservedAddr(ByteString.copyFrom(Multiaddr.tcp(isa).toBytes()));
    }
    return b.build();
  }

  /** Responder side (and push opener): writes the message and closes. */
  public static void send(Stream s, Supplier<Identify> message) {
    s.channel().writeAndFlush(frame(message.get())).addListener(ChannelFutureListener.CLOSE);
  }

  /** Requester side (and push receiver): reads one message. */
  public static CompletableFuture<Info> receive(Stream s) {
    return FramedReply.read(s.channel(), MAX_MESSAGE, bytes -> parse(s.remotePeer(), bytes),
        "identify stream closed before a message");
  }

  static Info parse(PeerId expected, byte[] bytes) {
    Identify m;
    try {
      m = Identify.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolationException("identify message is not valid protobuf", e);
    }
    if (m.hasPublicKey() && !expected.matches(m.getPublicKey().toByteArray())) {
      throw new ProtocolViolationException("identify: public key does not belong to " + expected);
    }
    List<Multiaddr> addrs = new ArrayList<>();
    for (ByteString a : m.getListenAddrsList()) {
      try {
        addrs.add(Multiaddr.fromBytes(a.toByteArray()));
      } catch (ProtocolViolationException ignored) {
        // addresses of transports dsd does not speak (udp, quic, ws): skipped, not an error
      }
    }
    Multiaddr observed = null;
    if (m.hasObservedAddr()) {
      try {
        observed = Multiaddr.fromBytes(m.getObservedAddr().toByteArray());
      } catch (ProtocolViolationException ignored) {
        // as above
      }
    }
    return new Info(expected, m.getAgentVersion(), m.getProtocolsList(), addrs, observed);
  }

  static ByteBuf frame(Identify m) {
    byte[] b = m.toByteArray();
    ByteBuf out = Unpooled.buffer(b.length + 5);
    dev.dsd.p2p.core.Varint.write(out, b.length);
    out.writeBytes(b);
    return out;
  }

  /** For protocols built the same way. */
  public static VarintFrameEncoder encoder() {
    return VarintFrameEncoder.INSTANCE;
  }
}
