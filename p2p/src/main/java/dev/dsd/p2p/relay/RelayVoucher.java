package dev.dsd.p2p.relay;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.crypto.SignedEnvelope;
import dev.dsd.p2p.relay.proto.CircuitProto.Voucher;
import java.util.Arrays;

/**
 * A reservation voucher (circuit-v2.md "Reservation Vouchers"): the relay's signed statement that
 * it serves {@code peer} until {@code expiration}, in a signed envelope with domain
 * {@value #DOMAIN} and payload type multicodec {@code libp2p-relay-rsvp} (0x0302), written as the
 * two bytes {@code 03 02} as go- and js-libp2p do (not as a uvarint).
 */
public record RelayVoucher(PeerId relay, PeerId peer, long expiration) {
  public static final String DOMAIN = "libp2p-relay-rsvp";
  static final byte[] PAYLOAD_TYPE = {0x03, 0x02};

  public byte[] seal(Identity relayIdentity) {
    Voucher v = Voucher.newBuilder().setRelay(ByteString.copyFrom(relay.toBytes()))
        .setPeer(ByteString.copyFrom(peer.toBytes())).setExpiration(expiration).build();
    return SignedEnvelope.seal(relayIdentity, DOMAIN, PAYLOAD_TYPE, v.toByteArray());
  }

  /** Verifies the envelope and that the relay it names signed it. */
  public static RelayVoucher open(byte[] envelope) {
    SignedEnvelope.Opened o = SignedEnvelope.open(envelope, DOMAIN);
    if (!Arrays.equals(o.payloadType(), PAYLOAD_TYPE)) {
      throw new ProtocolViolationException("reservation voucher has payload type " + Arrays.toString(o.payloadType()));
    }
    Voucher v;
    try {
      v = Voucher.parseFrom(o.payload());
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolationException("reservation voucher payload is not valid protobuf", e);
    }
    RelayVoucher r = new RelayVoucher(PeerId.fromBytes(v.getRelay().toByteArray()),
        PeerId.fromBytes(v.getPeer().toByteArray()), v.getExpiration());
    if (!r.relay.equals(o.signer())) {
      throw new ProtocolViolationException("reservation voucher for relay " + r.relay + " is signed by " + o.signer());
    }
    return r;
  }
}
