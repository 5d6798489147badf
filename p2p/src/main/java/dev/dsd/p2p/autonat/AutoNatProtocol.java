package dev.dsd.p2p.autonat;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message;
import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.util.ArrayList;
import java.util.List;

/**
 * AutoNAT v1 ({@code /libp2p/autonat/1.0.0}, github.com/libp2p/specs autonat/autonat-v1.md): the
 * asker opens a stream and writes one {@code Message{type=DIAL, dial.peer={id, addrs}}}; the server
 * dials those addresses back on fresh connections and answers one
 * {@code Message{type=DIAL_RESPONSE, dialResponse={status, statusText, addr}}}. Both are
 * varint-length-prefixed. Limits: {@link #MAX_MESSAGE} bytes a message, {@link #MAX_ADDRS}
 * addresses a request (more are ignored), {@link #MAX_TEXT} characters of status text.
 */
public final class AutoNatProtocol {
  public static final String ID = "/libp2p/autonat/1.0.0";
  /** As js-libp2p: a request lists a handful of addresses, never kilobytes of them. */
  public static final int MAX_MESSAGE = 8 * 1024;
  public static final int MAX_ADDRS = 32;
  public static final int MAX_TEXT = 256;

  /** A parsed dial request: who asks and the addresses it wants dialed (unparsable ones dropped). */
  public record DialRequest(PeerId peer, List<Multiaddr> addrs) {}

  /** A parsed answer: status, the address dialed (may be null) and the server's text. */
  public record DialResponse(Message.ResponseStatus status, Multiaddr addr, String text) {}

  private AutoNatProtocol() {}

  static Message dial(PeerId self, List<Multiaddr> addrs) {
    Message.PeerInfo.Builder p = Message.PeerInfo.newBuilder().setId(ByteString.copyFrom(self.toBytes()));
    addrs.stream().limit(MAX_ADDRS).forEach(a -> p.addAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
    return Message.newBuilder().setType(Message.MessageType.DIAL)
        .setDial(Message.Dial.newBuilder().setPeer(p)).build();
  }

  static Message response(Message.ResponseStatus status, String text, Multiaddr addr) {
    Message.DialResponse.Builder r = Message.DialResponse.newBuilder().setStatus(status);
    if (text != null && !text.isEmpty()) {
      r.setStatusText(text.length() > MAX_TEXT ? text.substring(0, MAX_TEXT) : text);
    }
    if (addr != null) {
      r.setAddr(ByteString.copyFrom(addr.withoutPeer().toBytes()));
    }
    return Message.newBuilder().setType(Message.MessageType.DIAL_RESPONSE).setDialResponse(r).build();
  }

  /** Parses a request; a message that is not a well-formed DIAL raises ProtocolViolationException. */
  public static DialRequest parseDial(byte[] bytes) {
    Message m = parse(bytes);
    if (!m.hasType() || m.getType() != Message.MessageType.DIAL || !m.hasDial() || !m.getDial().hasPeer()
        || !m.getDial().getPeer().hasId()) {
      throw new ProtocolViolationException("autonat: expected a DIAL message with a peer id");
    }
    Message.PeerInfo p = m.getDial().getPeer();
    PeerId id = PeerId.fromBytes(p.getId().toByteArray());
    List<Multiaddr> addrs = new ArrayList<>();
    for (ByteString a : p.getAddrsList()) {
      if (addrs.size() >= MAX_ADDRS) {
        break;
      }
      try {
        addrs.add(Multiaddr.fromBytes(a.toByteArray()));
      } catch (ProtocolViolationException ignored) {
        // an address of a transport dsd does not speak: not dialed, not an error
      }
    }
    return new DialRequest(id, addrs);
  }

  /** Parses an answer; anything but a DIAL_RESPONSE with a known status raises ProtocolViolationException. */
  public static DialResponse parseResponse(byte[] bytes) {
    Message m = parse(bytes);
    if (!m.hasType() || m.getType() != Message.MessageType.DIAL_RESPONSE || !m.hasDialResponse()
        || !m.getDialResponse().hasStatus()) {
      throw new ProtocolViolationException("autonat: expected a DIAL_RESPONSE with a known status");
    }
    Message.DialResponse r = m.getDialResponse();
    Multiaddr addr = null;
    if (r.hasAddr()) {
      try {
        addr = Multiaddr.fromBytes(r.getAddr().toByteArray());
      } catch (ProtocolViolationException ignored) {
        // a transport dsd does not speak: the status still counts
      }
    }
    String text = r.getStatusText();
    return new DialResponse(r.getStatus(), addr, text.length() > MAX_TEXT ? text.substring(0, MAX_TEXT) : text);
  }

  private static Message parse(byte[] bytes) {
    if (bytes.length > MAX_MESSAGE) {
      throw new LimitExceededException("autonat message bytes", bytes.length, MAX_MESSAGE);
    }
    try {
      return Message.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolationException("autonat message is not valid protobuf", e);
    }
  }

  static ByteBuf frame(Message m) {
    byte[] b = m.toByteArray();
    ByteBuf out = Unpooled.buffer(b.length + 5);
    Varint.write(out, b.length);
    out.writeBytes(b);
    return out;
  }
}
