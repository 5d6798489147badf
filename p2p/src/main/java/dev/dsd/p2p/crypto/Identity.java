package dev.dsd.p2p.crypto;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.proto.Keys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Set;

/**
 * A node's Ed25519 identity. Serialized as libp2p's protobuf {@code PrivateKey} whose Data is the
 * 32-byte seed followed by the 32-byte public key (as go- and js-libp2p write it).
 */
public final class Identity {
  private final byte[] seed;
  private final byte[] publicKey;
  private final PeerId peerId;

  private Identity(byte[] seed, byte[] publicKey) {
    this.seed = seed;
    this.publicKey = publicKey;
    this.peerId = PeerId.fromPublicKey(publicKeyProto());
  }

  public static Identity generate() {
    Ed25519.Raw raw = Ed25519.generate();
    return new Identity(raw.seed(), raw.publicKey());
  }

  public static Identity fromSeed(byte[] seed) {
    if (seed.length != 32) {
      throw new IllegalArgumentException("an Ed25519 seed is 32 bytes, got " + seed.length);
    }
    return new Identity(seed.clone(), Ed25519.publicKeyOf(seed));
  }

  /** Parses libp2p's protobuf PrivateKey (Ed25519 only; Data = seed || public key, or seed alone). */
  public static Identity fromProtobuf(byte[] bytes) {
    Keys.PrivateKey pk;
    try {
      pk = Keys.PrivateKey.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new P2pException("not a libp2p private key: " + e.getMessage(), e);
    }
    if (pk.getType() != Keys.KeyType.Ed25519) {
      throw new P2pException("unsupported identity key type " + pk.getType() + " (dsd uses Ed25519)");
    }
    byte[] data = pk.getData().toByteArray();
    if (data.length != 64 && data.length != 32) {
      throw new P2pException("Ed25519 private key data must be 32 or 64 bytes, got " + data.length);
    }
    Identity id = fromSeed(Arrays.copyOf(data, 32));
    if (data.length == 64 && !Arrays.equals(Arrays.copyOfRange(data, 32, 64), id.publicKey)) {
      throw new P2pException("Ed25519 private key's public half does not match its seed");
    }
    return id;
  }

  public byte[] toProtobuf() {
    byte[] data = Arrays.copyOf(seed, 64);
    System.arraycopy(publicKey, 0, data, 32, 32);
    return Keys.PrivateKey.newBuilder().setType(Keys.KeyType.Ed25519).setData(ByteString.copyFrom(data)).build()
        .toByteArray();
  }

  /** Loads the key file, or creates it (permissions 0600) when absent. */
  public static Identity loadOrCreate(Path file) {
    try {
      if (Files.exists(file)) {
        return fromProtobuf(Files.readAllBytes(file));
      }
      Identity id = generate();
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Set<PosixFilePermission> owner = PosixFilePermissions.fromString("rw-------");
      try {
        Files.createFile(file, PosixFilePermissions.asFileAttribute(owner));
      } catch (UnsupportedOperationException e) {
        Files.createFile(file); // not a POSIX file system
      }
      Files.write(file, id.toProtobuf());
      return id;
    } catch (IOException e) {
      throw new P2pException("identity file " + file + ": " + e.getMessage(), e);
    }
  }

  public PeerId peerId() {
    return peerId;
  }

  public byte[] publicKey() {
    return publicKey.clone();
  }

  /** libp2p's protobuf PublicKey of this identity. */
  public byte[] publicKeyProto() {
    return Keys.PublicKey.newBuilder().setType(Keys.KeyType.Ed25519).setData(ByteString.copyFrom(publicKey)).build()
        .toByteArray();
  }

  public byte[] sign(byte[] message) {
    return Ed25519.sign(seed, message);
  }

  /** Verifies a signature by the key in a protobuf PublicKey (Ed25519 only). */
  public static boolean verify(byte[] publicKeyProto, byte[] message, byte[] signature) {
    try {
      Keys.PublicKey pk = Keys.PublicKey.parseFrom(publicKeyProto);
      return pk.getType() == Keys.KeyType.Ed25519 && Ed25519.verify(pk.getData().toByteArray(), message, signature);
    } catch (InvalidProtocolBufferException e) {
      return false;
    }
  }
}
