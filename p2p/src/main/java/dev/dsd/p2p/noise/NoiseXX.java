package dev.dsd.p2p.noise;

import dev.dsd.p2p.core.ProtocolViolationException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The Noise XX handshake, {@code Noise_XX_25519_ChaChaPoly_SHA256}, as a plain state machine
 * (Noise spec revision 34, sections 5.2, 5.3 and 7.5), with the empty prologue libp2p uses:
 *
 * <pre>
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * </pre>
 *
 * Call {@link #writeMessage} / {@link #readMessage} alternately starting with the initiator's
 * write; after the third message {@link #split} gives the transport ciphers. The JDK has no HKDF,
 * so it is written here over HmacSHA256, as the Noise spec defines it.
 */
public final class NoiseXX {
  static final byte[] PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_SHA256".getBytes(StandardCharsets.US_ASCII);
  static final int DH_LEN = 32;

  private final boolean initiator;
  private final X25519.Pair s;
  private X25519.Pair e;
  private byte[] rs;
  private byte[] re;
  private byte[] ck;
  private byte[] h;
  private final CipherState cipher = new CipherState();
  private int step;

  public NoiseXX(boolean initiator, byte[] staticPrivate, byte[] staticPublic) {
    this(initiator, new X25519.Pair(staticPrivate, staticPublic), null);
  }

  /** For tests with fixed ephemeral keys (test vectors). */
  NoiseXX(boolean initiator, X25519.Pair s, X25519.Pair fixedEphemeral) {
    this.initiator = initiator;
    this.s = s;
    this.e = fixedEphemeral;
    // The name is exactly 32 bytes = HASHLEN, so h is the name itself.
    this.h = PROTOCOL_NAME.clone();
    this.ck = h.clone();
    mixHash(new byte[0]); // empty prologue
  }

  /** A fresh static X25519 key pair for a connection: {private, public}. */
  public static byte[][] newStaticKey() {
    X25519.Pair p = X25519.generate();
    return new byte[][] {p.privateKey(), p.publicKey()};
  }

  public boolean isInitiator() {
    return initiator;
  }

  /** Whether it is this side's turn to write. */
  public boolean myTurn() {
    return (step % 2 == 0) == initiator;
  }

  public boolean isComplete() {
    return step == 3;
  }

  /** The remote static X25519 key (after message 2 for the initiator, 3 for the responder). */
  public byte[] remoteStatic() {
    return rs == null ? null : rs.clone();
  }

  public byte[] localStatic() {
    return s.publicKey().clone();
  }

  public byte[] writeMessage(byte[] payload) {
    if (!myTurn() || isComplete()) {
      throw new IllegalStateException("noise: not our turn to write (step " + step + ")");
    }
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    switch (step) {
      case 0 -> { // -> e
        writeEphemeral(out);
      }
      case 1 -> { // <- e, ee, s, es
        writeEphemeral(out);
        mixKey(X25519.dh(e.privateKey(), re));
        out.writeBytes(encryptAndHash(s.publicKey()));
        mixKey(X25519.dh(s.privateKey(), re));
      }
      case 2 -> { // -> s, se
        out.writeBytes(encryptAndHash(s.publicKey()));
        mixKey(X25519.dh(s.privateKey(), re));
      }
      default -> throw new IllegalStateException();
    }
    out.writeBytes(encryptAndHash(payload));
    step++;
    return out.toByteArray();
  }

  public byte[] readMessage(byte[] message) {
    if (myTurn() || isComplete()) {
      throw new ProtocolViolationException("noise: unexpected handshake message at step " + step);
    }
    int pos = 0;
    switch (step) {
      case 0 -> {
        pos = readEphemeral(message, pos);
      }
      case 1 -> {
        pos = readEphemeral(message, pos);
        mixKey(X25519.dh(e.privateKey(), re));
        pos = readStatic(message, pos);
        mixKey(X25519.dh(e.privateKey(), rs));
      }
      case 2 -> {
        pos = readStatic(message, pos);
        mixKey(X25519.dh(e.privateKey(), rs));
      }
      default -> throw new IllegalStateException();
    }
    byte[] payload = decryptAndHash(Arrays.copyOfRange(message, pos, message.length));
    step++;
    return payload;
  }

  private void writeEphemeral(java.io.ByteArrayOutputStream out) {
    if (e == null) {
      e = X25519.generate();
    }
    out.writeBytes(e.publicKey());
    mixHash(e.publicKey());
  }

  private int readEphemeral(byte[] m, int pos) {
    if (m.length < pos + DH_LEN) {
      throw new ProtocolViolationException("noise message too short for an ephemeral key: " + m.length + " bytes");
    }
    re = Arrays.copyOfRange(m, pos, pos + DH_LEN);
    mixHash(re);
    return pos + DH_LEN;
  }

  private int readStatic(byte[] m, int pos) {
    int len = DH_LEN + (cipher.hasKey() ? CipherState.TAG : 0);
    if (m.length < pos + len) {
      throw new ProtocolViolationException("noise message too short for a static key: " + m.length + " bytes");
    }
    rs = decryptAndHash(Arrays.copyOfRange(m, pos, pos + len));
    return pos + len;
  }

  /** After the handshake: {send, receive} cipher states for this side. */
  public Transport split() {
    if (!isComplete()) {
      throw new IllegalStateException("noise: handshake not complete");
    }
    byte[][] k = hkdf(ck, new byte[0]);
    CipherState c1 = new CipherState();
    CipherState c2 = new CipherState();
    c1.initializeKey(Arrays.copyOf(k[0], 32));
    c2.initializeKey(Arrays.copyOf(k[1], 32));
    return initiator ? new Transport(c1, c2) : new Transport(c2, c1);
  }

  /** The handshake hash, identical on both sides after completion (channel binding, tests). */
  public byte[] handshakeHash() {
    return h.clone();
  }

  /** Transport-phase encryption: the two directions of a completed handshake. */
  public static final class Transport {
    private final CipherState send;
    private final CipherState receive;

    Transport(CipherState send, CipherState receive) {
      this.send = send;
      this.receive = receive;
    }

    public byte[] encrypt(byte[] plaintext) {
      return send.encrypt(new byte[0], plaintext);
    }

    public byte[] decrypt(byte[] ciphertext) {
      return receive.decrypt(new byte[0], ciphertext);
    }
  }

  private void mixHash(byte[] data) {
    h = sha256(h, data);
  }

  private void mixKey(byte[] ikm) {
    byte[][] k = hkdf(ck, ikm);
    ck = k[0];
    cipher.initializeKey(Arrays.copyOf(k[1], 32));
  }

  private byte[] encryptAndHash(byte[] p) {
    byte[] c = cipher.encrypt(h, p);
    mixHash(c);
    return c;
  }

  private byte[] decryptAndHash(byte[] c) {
    byte[] p = cipher.decrypt(h, c);
    mixHash(c);
    return p;
  }

  static byte[][] hkdf(byte[] chainingKey, byte[] ikm) {
    byte[] temp = hmac(chainingKey, ikm);
    byte[] out1 = hmac(temp, new byte[] {1});
    byte[] in2 = Arrays.copyOf(out1, out1.length + 1);
    in2[out1.length] = 2;
    return new byte[][] {out1, hmac(temp, in2)};
  }

  private static byte[] hmac(byte[] key, byte[] data) {
    try {
      Mac m = Mac.getInstance("HmacSHA256");
      m.init(new SecretKeySpec(key, "HmacSHA256"));
      return m.doFinal(data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] sha256(byte[] a, byte[] b) {
    try {
      MessageDigest d = MessageDigest.getInstance("SHA-256");
      d.update(a);
      d.update(b);
      return d.digest();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }
}
