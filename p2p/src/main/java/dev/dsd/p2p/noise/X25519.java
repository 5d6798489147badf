package dev.dsd.p2p.noise;

import dev.dsd.p2p.core.Bytes;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;
import javax.crypto.KeyAgreement;

/** X25519 with the JDK's XDH provider, over raw 32-byte keys (wrapped in X.509/PKCS#8 prefixes). */
final class X25519 {
  private static final byte[] X509_PREFIX = HexFormat.of().parseHex("302a300506032b656e032100");
  private static final byte[] PKCS8_PREFIX = HexFormat.of().parseHex("302e020100300506032b656e04220420");

  record Pair(byte[] privateKey, byte[] publicKey) {}

  private X25519() {}

  static Pair generate() {
    try {
      KeyPair kp = KeyPairGenerator.getInstance("X25519").generateKeyPair();
      byte[] priv = kp.getPrivate().getEncoded();
      byte[] pub = kp.getPublic().getEncoded();
      return new Pair(Arrays.copyOfRange(priv, priv.length - 32, priv.length),
          Arrays.copyOfRange(pub, pub.length - 32, pub.length));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("X25519 unavailable", e);
    }
  }

  static byte[] dh(byte[] privateKey, byte[] publicKey) {
    try {
      KeyFactory f = KeyFactory.getInstance("X25519");
      KeyAgreement ka = KeyAgreement.getInstance("X25519");
      ka.init(f.generatePrivate(new PKCS8EncodedKeySpec(Bytes.concat(PKCS8_PREFIX, privateKey))));
      ka.doPhase(f.generatePublic(new X509EncodedKeySpec(Bytes.concat(X509_PREFIX, publicKey))), true);
      return ka.generateSecret();
    } catch (GeneralSecurityException e) {
      // the JDK rejects all-zero results (small-order points): the peer sent a bad key
      throw new dev.dsd.p2p.core.ProtocolViolationException("X25519 agreement failed: " + e.getMessage(), e);
    }
  }

}
