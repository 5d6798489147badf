package dev.dsd.p2p.core;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * A libp2p peer id: the multihash of the peer's protobuf-encoded public key, identity-hashed when
 * that is at most 42 bytes (Ed25519 ids print as {@code 12D3KooW...}), SHA-256 otherwise
 * (peer-ids spec). Parses the legacy base58btc form and the CIDv1 form (multibase base32,
 * codec libp2p-key 0x72).
 */
public final class PeerId implements Comparable<PeerId> {
  static final int IDENTITY = 0x00;
  static final int SHA2_256 = 0x12;
  static final int LIBP2P_KEY = 0x72;
  static final int MAX_INLINE_KEY = 42;
  /** Longest multihash accepted: identity of a 42-byte key plus its 2-byte header, with slack. */
  static final int MAX_BYTES = 128;

  private final byte[] bytes;

  private PeerId(byte[] bytes) {
    this.bytes = bytes;
  }

  public static PeerId fromPublicKey(byte[] publicKeyProto) {
    if (publicKeyProto.length <= MAX_INLINE_KEY) {
      byte[] mh = new byte[2 + publicKeyProto.length];
      mh[0] = IDENTITY;
      mh[1] = (byte) publicKeyProto.length;
      System.arraycopy(publicKeyProto, 0, mh, 2, publicKeyProto.length);
      return new PeerId(mh);
    }
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(publicKeyProto);
      byte[] mh = new byte[34];
      mh[0] = SHA2_256;
      mh[1] = 32;
      System.arraycopy(d, 0, mh, 2, 32);
      return new PeerId(mh);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** From multihash bytes (as carried in /p2p multiaddrs, identify and Kademlia). */
  public static PeerId fromBytes(byte[] multihash) {
    if (multihash.length < 2 || multihash.length > MAX_BYTES) {
      throw new ProtocolViolationException("peer id of " + multihash.length + " bytes");
    }
    long[] code = Varint.decode(multihash, 0);
    long[] len = Varint.decode(multihash, (int) code[1]);
    int header = (int) (code[1] + len[1]);
    if (code[0] != IDENTITY && code[0] != SHA2_256) {
      throw new ProtocolViolationException("peer id uses unsupported multihash code 0x" + Long.toHexString(code[0]));
    }
    if (len[0] != multihash.length - header || (code[0] == SHA2_256 && len[0] != 32)) {
      throw new ProtocolViolationException("peer id multihash length " + len[0] + " does not match its "
          + (multihash.length - header) + " digest bytes");
    }
    return new PeerId(multihash.clone());
  }

  /** Parses {@code 12D3KooW...} / {@code Qm...} (base58btc) or a CIDv1 {@code bafz...} string. */
  public static PeerId parse(String s) {
    try {
      if (s.startsWith("1") || s.startsWith("Qm")) {
        return fromBytes(Base58.decode(s));
      }
      if (s.startsWith("b")) {
        byte[] cid = Base32.decode(s.substring(1));
        long[] version = Varint.decode(cid, 0);
        long[] codec = Varint.decode(cid, (int) version[1]);
        if (version[0] != 1 || codec[0] != LIBP2P_KEY) {
          throw new ProtocolViolationException("CID is not a v1 libp2p-key CID (version " + version[0] + ", codec 0x"
              + Long.toHexString(codec[0]) + ")");
        }
        return fromBytes(Arrays.copyOfRange(cid, (int) (version[1] + codec[1]), cid.length));
      }
    } catch (IllegalArgumentException e) {
      throw new ProtocolViolationException("invalid peer id '" + s + "': " + e.getMessage(), e);
    }
    throw new ProtocolViolationException("invalid peer id '" + s + "': neither base58btc nor a base32 CIDv1");
  }

  public byte[] toBytes() {
    return bytes.clone();
  }

  public String toBase58() {
    return Base58.encode(bytes);
  }

  /** The CIDv1 form: multibase 'b' + base32(0x01, 0x72, multihash). */
  public String toCid() {
    byte[] cid = new byte[2 + bytes.length];
    cid[0] = 1;
    cid[1] = LIBP2P_KEY;
    System.arraycopy(bytes, 0, cid, 2, bytes.length);
    return "b" + Base32.encode(cid);
  }

  /** The protobuf public key inlined in an identity-hashed id, or null for hashed ids. */
  public byte[] inlinePublicKey() {
    return bytes[0] == IDENTITY ? Arrays.copyOfRange(bytes, 2, bytes.length) : null;
  }

  /** Whether {@code publicKeyProto} is the key this id was made from. */
  public boolean matches(byte[] publicKeyProto) {
    return equals(fromPublicKey(publicKeyProto));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PeerId p && Arrays.equals(bytes, p.bytes);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(bytes);
  }

  @Override
  public int compareTo(PeerId o) {
    return Arrays.compareUnsigned(bytes, o.bytes);
  }

  @Override
  public String toString() {
    return toBase58();
  }
}
