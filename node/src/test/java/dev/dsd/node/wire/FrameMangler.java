package dev.dsd.node.wire;

import dev.dsd.p2p.core.Varint;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;

/**
 * Byte-level damage to varint-framed protobuf, for fuzzing dsd's protocols: noise, and valid
 * frames with bits flipped, bytes cut, duplicated or inserted, or length prefixes that lie.
 * Everything comes from the one {@link Random}, so a seed replays the same frames.
 */
public final class FrameMangler {
  /**
   * A valid frame's bytes, mangled. {@code body} is set when the result is still one whole frame
   * (its prefix rewritten to fit); otherwise {@code bytes} are what goes on the wire, and since the
   * prefix no longer matches, the sender finishes the stream after them.
   */
  public record Mangled(String label, byte[] body, byte[] bytes) {
    public boolean terminal() {
      return body == null;
    }
  }

  /** Bytes that were never a frame, and what kind of noise they are. */
  public record Noise(String label, byte[] bytes) {}

  private final Random rnd;
  private final int maxFrameBytes;

  public FrameMangler(Random rnd, int maxFrameBytes) {
    this.rnd = rnd;
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Mangles the frame with body {@code body}; one in {@code oneInTerminal} breaks its length prefix. */
  public Mangled mangle(byte[] body, int oneInTerminal) {
    byte[] b = body.clone();
    switch (rnd.nextInt(oneInTerminal) == 0 ? 7 + rnd.nextInt(4) : rnd.nextInt(7)) {
      case 0, 1 -> {
        int flips = 1 + rnd.nextInt(4);
        for (int i = 0; i < flips && b.length > 0; i++) {
          b[rnd.nextInt(b.length)] ^= (byte) (1 << rnd.nextInt(8));
        }
        return new Mangled("bit flips", b, null);
      }
      case 2 -> {
        if (b.length > 0) {
          b[rnd.nextInt(b.length)] = (byte) new int[] {0, 0xFF, 0x80, 0x7F, rnd.nextInt(256)}[rnd.nextInt(5)];
        }
        return new Mangled("byte replaced", b, null);
      }
      case 3 -> {
        return new Mangled("truncated, length fixed", Arrays.copyOf(b, rnd.nextInt(Math.max(1, b.length))), null);
      }
      case 4 -> {
        int from = rnd.nextInt(b.length + 1);
        int to = from + rnd.nextInt(b.length - from + 1);
        return new Mangled("range duplicated", RawStream.concat(Arrays.copyOf(b, to), Arrays.copyOfRange(b, from, to),
            Arrays.copyOfRange(b, to, b.length)), null);
      }
      case 5 -> {
        int from = rnd.nextInt(b.length + 1);
        int to = from + rnd.nextInt(b.length - from + 1);
        return new Mangled("range deleted", RawStream.concat(Arrays.copyOf(b, from), Arrays.copyOfRange(b, to, b.length)),
            null);
      }
      case 6 -> {
        int at = rnd.nextInt(b.length + 1);
        return new Mangled("bytes inserted", RawStream.concat(Arrays.copyOf(b, at), bytes(1 + rnd.nextInt(8)),
            Arrays.copyOfRange(b, at, b.length)), null);
      }
      case 7 -> {
        byte[] framed = RawStream.frame(b);
        return new Mangled("truncated, length kept", null, Arrays.copyOf(framed, rnd.nextInt(framed.length)));
      }
      case 8 -> {
        long[] lengths = {maxFrameBytes + 1L, 1L << 31, (1L << 62) + rnd.nextInt(1000), b.length + 1 + rnd.nextInt(1 << 20)};
        return new Mangled("length prefix too large", null, RawStream.concat(Varint.encode(lengths[rnd.nextInt(
            lengths.length)]), b));
      }
      case 9 -> {
        byte[] tooLong = new byte[10];
        Arrays.fill(tooLong, (byte) 0xFF);
        byte[] padded = {(byte) (0x80 | (b.length & 0x7F)), (byte) (b.length >> 7 | 0x80), 0}; // not minimal
        byte[][] prefixes = {{(byte) 0x80, 0}, tooLong, padded};
        return new Mangled("malformed length prefix", null, RawStream.concat(prefixes[rnd.nextInt(prefixes.length)], b));
      }
      default -> {
        byte[] framed = RawStream.frame(b);
        framed[rnd.nextInt(Varint.size(b.length))] ^= (byte) (1 << rnd.nextInt(8));
        return new Mangled("length prefix bit flip", null, RawStream.concat(framed, bytes(rnd.nextInt(8))));
      }
    }
  }

  /** Random bytes: short or long, raw or framed, shapeless or shaped like protobuf. */
  public Noise noise() {
    return switch (rnd.nextInt(4)) {
      case 0 -> new Noise("noise", bytes(rnd.nextInt(48)));
      case 1 -> new Noise("long noise", bytes(rnd.nextInt(rnd.nextInt(20) == 0 ? 70_000 : 600)));
      case 2 -> new Noise("framed noise", RawStream.frame(bytes(rnd.nextInt(200))));
      default -> new Noise("framed protobuf-like noise", RawStream.frame(protobufNoise()));
    };
  }

  public byte[] bytes(int n) {
    byte[] b = new byte[n];
    rnd.nextBytes(b);
    return b;
  }

  /** Tags and values that look like protobuf: fields 1..9 of every wire type, some lengths wrong. */
  public byte[] protobufNoise() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int fields = 1 + rnd.nextInt(6);
    for (int i = 0; i < fields; i++) {
      int field = 1 + rnd.nextInt(9);
      int wire = new int[] {0, 1, 2, 5, 3, 4, 7}[rnd.nextInt(7)];
      out.writeBytes(Varint.encode((long) field << 3 | wire));
      switch (wire) {
        case 0 -> out.writeBytes(Varint.encode(rnd.nextLong() & Long.MAX_VALUE));
        case 1 -> out.writeBytes(bytes(8));
        case 5 -> out.writeBytes(bytes(4));
        case 2 -> {
          int len = rnd.nextInt(40);
          out.writeBytes(Varint.encode(len + (rnd.nextInt(8) == 0 ? rnd.nextInt(100) : 0)));
          byte[] value = bytes(len);
          if (len > 0 && rnd.nextBoolean()) { // a nested message's first tag
            value[0] = (byte) ((1 + rnd.nextInt(9)) << 3 | rnd.nextInt(3));
          }
          out.writeBytes(value);
        }
        default -> { } // group markers and the invalid wire type 7 carry nothing
      }
    }
    return out.toByteArray();
  }
}
