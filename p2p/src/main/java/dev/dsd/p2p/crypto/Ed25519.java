package dev.dsd.p2p.crypto;

import dev.dsd.p2p.core.Bytes;
import dev.dsd.p2p.core.P2pException;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Ed25519 with the JDK's provider (JDK 15+), converting between the JDK's encodings and the raw
 * 32-byte keys libp2p puts on the wire: the DER prefixes below wrap a raw key as X.509 / PKCS#8.
 */
public final class Ed25519 {
  private static final byte[] X509_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");
  private static final byte[] PKCS8_PREFIX = HexFormat.of().parseHex("302e020100300506032b657004220420");

  private Ed25519() {}

  /** A key pair as raw bytes: 32-byte seed and 32-byte public key. */
  public record Raw(byte[] seed, byte[] publicKey) {}

  public static Raw generate() {
    try {
      KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      byte[] pkcs8 = kp.getPrivate().getEncoded();
      byte[] x509 = kp.getPublic().getEncoded();
      return new Raw(Arrays.copyOfRange(pkcs8, pkcs8.length - 32, pkcs8.length),
          Arrays.copyOfRange(x509, x509.length - 32, x509.length));
    } catch (GeneralSecurityException e) {
      throw new P2pException("Ed25519 is unavailable in this JDK", e);
    }
  }

  /** Derives the public key of a seed by signing nothing: the JDK has no direct derivation call. */
  public static byte[] publicKeyOf(byte[] seed) {
    try {
      // KeyPairGenerator with a fixed "random" source that returns the seed derives its public key.
      KeyPairGenerator g = KeyPairGenerator.getInstance("Ed25519");
      g.initialize(255, new FixedSeed(seed));
      byte[] x509 = g.generateKeyPair().getPublic().getEncoded();
      return Arrays.copyOfRange(x509, x509.length - 32, x509.length);
    } catch (GeneralSecurityException e) {
      throw new P2pException("Ed25519 is unavailable in this JDK", e);
    }
  }

  public static byte[] sign(byte[] seed, byte[] message) {
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initSign(privateKey(seed));
      s.update(message);
      return s.sign();
    } catch (GeneralSecurityException e) {
      throw new P2pException("Ed25519 signing failed", e);
    }
  }

  public static boolean verify(byte[] publicKey, byte[] message, byte[] signature) {
    if (publicKey.length != 32 || signature.length != 64) {
      return false;
    }
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initVerify(publicKey(publicKey));
      s.update(message);
      return s.verify(signature);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return false; // malformed key or signature: not valid
    }
  }

  static PrivateKey privateKey(byte[] seed) throws GeneralSecurityException {
    return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(Bytes.concat(PKCS8_PREFIX, seed)));
  }

  static PublicKey publicKey(byte[] raw) throws GeneralSecurityException {
    return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(Bytes.concat(X509_PREFIX, raw)));
  }


  /** A SecureRandom that yields a given seed, so the JDK generator derives that seed's key pair. */
  private static final class FixedSeed extends java.security.SecureRandom {
    private final byte[] seed;

    FixedSeed(byte[] seed) {
      this.seed = seed.clone();
    }

    @Override
    public void nextBytes(byte[] bytes) {
      System.arraycopy(seed, 0, bytes, 0, Math.min(seed.length, bytes.length));
    }
  }
}
