package dev.dsd.p2p.crypto;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.crypto.proto.EnvelopeProto.Envelope;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * libp2p signed envelopes (specs RFC/0002-signed-envelopes.md): a payload with its type, signed
 * by a peer's identity key under a domain string so that a signature made for one purpose cannot
 * be replayed for another. The signed bytes are
 * {@code uvarint(len) domain | uvarint(len) payloadType | uvarint(len) payload}.
 */
public final class SignedEnvelope {
  /** Envelopes larger than this are refused before parsing. */
  public static final int MAX_BYTES = 4096;

  /** A verified envelope: who signed it and what. */
  public record Opened(PeerId signer, byte[] payloadType, byte[] payload) {}

  private SignedEnvelope() {}

  public static byte[] seal(Identity signer, String domain, byte[] payloadType, byte[] payload) {
    byte[] sig = signer.sign(signedBytes(domain, payloadType, payload));
    return Envelope.newBuilder().setPublicKey(ByteString.copyFrom(signer.publicKeyProto()))
        .setPayloadType(ByteString.copyFrom(payloadType)).setPayload(ByteString.copyFrom(payload))
        .setSignature(ByteString.copyFrom(sig)).build().toByteArray();
  }

  /** Parses and verifies; throws {@link ProtocolViolationException} when the signature does not hold. */
  public static Opened open(byte[] envelope, String domain) {
    if (envelope.length > MAX_BYTES) {
      throw new ProtocolViolationException("signed envelope of " + envelope.length + " bytes exceeds " + MAX_BYTES);
    }
    Envelope e;
    try {
      e = Envelope.parseFrom(envelope);
    } catch (InvalidProtocolBufferException ex) {
      throw new ProtocolViolationException("signed envelope is not valid protobuf", ex);
    }
    byte[] key = e.getPublicKey().toByteArray();
    byte[] type = e.getPayloadType().toByteArray();
    byte[] payload = e.getPayload().toByteArray();
    if (!Identity.verify(key, signedBytes(domain, type, payload), e.getSignature().toByteArray())) {
      throw new ProtocolViolationException("signed envelope: signature does not verify for domain " + domain);
    }
    return new Opened(PeerId.fromPublicKey(key), type, payload);
  }

  static byte[] signedBytes(String domain, byte[] payloadType, byte[] payload) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    byte[] d = domain.getBytes(StandardCharsets.UTF_8);
    for (byte[] part : new byte[][] {d, payloadType, payload}) {
      o.writeBytes(Varint.encode(part.length));
      o.writeBytes(part);
    }
    return o.toByteArray();
  }
}
