package dev.dsd.p2p.fuzz;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Byte-level mutations of a valid message, for the protocol fuzz tests. */
public final class Mutator {
  private Mutator() {}

  public static byte[] bytes(SplittableRandom r, int n) {
    byte[] b = new byte[n];
    r.nextBytes(b);
    return b;
  }

  /** One to four of: flip a bit, set a byte, cut the end, drop a slice, duplicate a slice, insert junk. */
  public static byte[] mutate(SplittableRandom r, byte[] valid) {
    byte[] b = valid.clone();
    for (int n = r.nextInt(1, 5); n > 0; n--) {
      if (b.length == 0) {
        return bytes(r, r.nextInt(1, 8));
      }
      int at = r.nextInt(b.length);
      switch (r.nextInt(6)) {
        case 0 -> b[at] ^= (byte) (1 << r.nextInt(8));
        case 1 -> b[at] = (byte) r.nextInt(256);
        case 2 -> b = Arrays.copyOf(b, at);
        case 3 -> {
          int len = r.nextInt(1, b.length - at + 1);
          byte[] out = new byte[b.length - len];
          System.arraycopy(b, 0, out, 0, at);
          System.arraycopy(b, at + len, out, at, b.length - at - len);
          b = out;
        }
        case 4 -> {
          int len = r.nextInt(1, b.length - at + 1);
          byte[] out = new byte[b.length + len];
          System.arraycopy(b, 0, out, 0, at + len);
          System.arraycopy(b, at, out, at + len, b.length - at);
          b = out;
        }
        default -> {
          byte[] junk = bytes(r, r.nextInt(1, 16));
          byte[] out = new byte[b.length + junk.length];
          System.arraycopy(b, 0, out, 0, at);
          System.arraycopy(junk, 0, out, at, junk.length);
          System.arraycopy(b, at, out, at + junk.length, b.length - at);
          b = out;
        }
      }
    }
    return b;
  }
}
