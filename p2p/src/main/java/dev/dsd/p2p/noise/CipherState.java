package dev.dsd.p2p.noise;

import dev.dsd.p2p.core.ProtocolViolationException;
import java.security.GeneralSecurityException;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Noise CipherState with ChaChaPoly (Noise spec, section 5.1 and 12.3): 32-byte key, 64-bit counter
 * nonce encoded as 4 zero bytes + 8 bytes little-endian, 16-byte Poly1305 tag. Not thread-safe: one
 * per direction, used from the channel's event loop.
 */
final class CipherState {
  static final int TAG = 16;
  private SecretKeySpec key;
  private long nonce;
  // One Cipher per direction, re-initialised with each nonce: getInstance per frame cost more
  // than the encryption itself.
  private Cipher cipher;

  boolean hasKey() {
    return key != null;
  }

  void initializeKey(byte[] k) {
    key = new SecretKeySpec(k, "ChaCha20");
    nonce = 0;
  }

  byte[] encrypt(byte[] ad, byte[] plaintext) {
    if (key == null) {
      return plaintext;
    }
    try {
      Cipher c = cipher();
      c.init(Cipher.ENCRYPT_MODE, key, new IvParameterSpec(nonceBytes(nonce++)));
      if (ad.length > 0) {
        c.updateAAD(ad);
      }
      return c.doFinal(plaintext);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("ChaCha20-Poly1305 unavailable", e);
    }
  }

  byte[] decrypt(byte[] ad, byte[] ciphertext) {
    if (key == null) {
      return ciphertext;
    }
    if (ciphertext.length < TAG) {
      throw new ProtocolViolationException("noise ciphertext of " + ciphertext.length + " bytes is shorter than its tag");
    }
    try {
      Cipher c = cipher();
      c.init(Cipher.DECRYPT_MODE, key, new IvParameterSpec(nonceBytes(nonce)));
      if (ad.length > 0) {
        c.updateAAD(ad);
      }
      byte[] p = c.doFinal(ciphertext);
      nonce++; // only after success: a forged frame must not advance the counter
      return p;
    } catch (AEADBadTagException e) {
      throw new ProtocolViolationException("noise message failed authentication (tampered or out of order)");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("ChaCha20-Poly1305 unavailable", e);
    }
  }

  private Cipher cipher() throws GeneralSecurityException {
    if (cipher == null) {
      cipher = Cipher.getInstance("ChaCha20-Poly1305");
    }
    return cipher;
  }

  private static byte[] nonceBytes(long n) {
    if (n == -1L) {
      throw new ProtocolViolationException("noise nonce exhausted");
    }
    byte[] iv = new byte[12];
    for (int i = 0; i < 8; i++) {
      iv[4 + i] = (byte) (n >>> (8 * i));
    }
    return iv;
  }
}
