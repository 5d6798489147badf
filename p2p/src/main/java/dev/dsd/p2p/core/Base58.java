package dev.dsd.p2p.core;

import java.math.BigInteger;
import java.util.Arrays;

/** Base58 with the Bitcoin alphabet (base58btc), as peer ids print. Leading zero bytes become '1'. */
public final class Base58 {
  private static final String ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  private static final int[] INDEX = new int[128];
  private static final BigInteger BASE = BigInteger.valueOf(58);

  static {
    Arrays.fill(INDEX, -1);
    for (int i = 0; i < ALPHABET.length(); i++) {
      INDEX[ALPHABET.charAt(i)] = i;
    }
  }

  private Base58() {}

  public static String encode(byte[] data) {
    int zeros = 0;
    while (zeros < data.length && data[zeros] == 0) {
      zeros++;
    }
    BigInteger n = new BigInteger(1, data);
    StringBuilder sb = new StringBuilder();
    while (n.signum() > 0) {
      BigInteger[] qr = n.divideAndRemainder(BASE);
      sb.append(ALPHABET.charAt(qr[1].intValue()));
      n = qr[0];
    }
    sb.append("1".repeat(zeros));
    return sb.reverse().toString();
  }

  public static byte[] decode(String s) {
    BigInteger n = BigInteger.ZERO;
    int zeros = 0;
    while (zeros < s.length() && s.charAt(zeros) == '1') {
      zeros++;
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      int d = c < 128 ? INDEX[c] : -1;
      if (d < 0) {
        throw new IllegalArgumentException("invalid base58 character '" + c + "' at " + i);
      }
      n = n.multiply(BASE).add(BigInteger.valueOf(d));
    }
    byte[] body = n.signum() == 0 ? new byte[0] : n.toByteArray();
    int strip = body.length > 0 && body[0] == 0 ? 1 : 0; // BigInteger's sign byte
    byte[] out = new byte[zeros + body.length - strip];
    System.arraycopy(body, strip, out, zeros, body.length - strip);
    return out;
  }
}
