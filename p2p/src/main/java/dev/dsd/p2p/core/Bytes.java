package dev.dsd.p2p.core;

import java.util.Arrays;

/** Byte-array helpers the protocols share. */
public final class Bytes {
  private Bytes() {}

  public static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
