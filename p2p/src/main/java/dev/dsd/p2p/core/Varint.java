package dev.dsd.p2p.core;

import io.netty.buffer.ByteBuf;
import java.io.ByteArrayOutputStream;

/**
 * Unsigned LEB128 varints as multiformats specifies them: at most 9 bytes (63 bits), minimal
 * encoding only. Too few bytes is not an error: readers report "need more" and leave the buffer alone.
 */
public final class Varint {
  /** multiformats/unsigned-varint: practical maximum of 9 bytes. */
  public static final int MAX_BYTES = 9;
  /** Returned by {@link #read(ByteBuf)} when the buffer ends inside a varint. */
  public static final long NEED_MORE = -1;

  private Varint() {}

  public static void write(ByteBuf out, long value) {
    checkNonNegative(value);
    while ((value & ~0x7FL) != 0) {
      out.writeByte((int) ((value & 0x7F) | 0x80));
      value >>>= 7;
    }
    out.writeByte((int) value);
  }

  public static byte[] encode(long value) {
    checkNonNegative(value);
    ByteArrayOutputStream o = new ByteArrayOutputStream(MAX_BYTES);
    while ((value & ~0x7FL) != 0) {
      o.write((int) ((value & 0x7F) | 0x80));
      value >>>= 7;
    }
    o.write((int) value);
    return o.toByteArray();
  }

  public static int size(long value) {
    int n = 1;
    while ((value & ~0x7FL) != 0) {
      value >>>= 7;
      n++;
    }
    return n;
  }

  /**
   * Reads a varint at the reader index. Returns {@link #NEED_MORE} (reader index unchanged) when the
   * bytes end first; throws {@link ProtocolViolationException} for more than 9 bytes or a
   * non-minimal encoding.
   */
  public static long read(ByteBuf in) {
    int start = in.readerIndex();
    long value = 0;
    for (int i = 0; i < MAX_BYTES; i++) {
      if (!in.isReadable()) {
        in.readerIndex(start);
        return NEED_MORE;
      }
      int b = in.readUnsignedByte();
      value |= (long) (b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0) {
          throw new ProtocolViolationException("varint is not minimally encoded");
        }
        return value;
      }
    }
    throw new ProtocolViolationException("varint longer than " + MAX_BYTES + " bytes");
  }

  /** Decodes a varint at {@code pos} of {@code b}; returns {value, bytes used}. */
  public static long[] decode(byte[] b, int pos) {
    long value = 0;
    for (int i = 0; i < MAX_BYTES; i++) {
      if (pos + i >= b.length) {
        throw new ProtocolViolationException("truncated varint");
      }
      int x = b[pos + i] & 0xFF;
      value |= (long) (x & 0x7F) << (7 * i);
      if ((x & 0x80) == 0) {
        if (x == 0 && i > 0) {
          throw new ProtocolViolationException("varint is not minimally encoded");
        }
        return new long[] {value, i + 1};
      }
    }
    throw new ProtocolViolationException("varint longer than " + MAX_BYTES + " bytes");
  }

  private static void checkNonNegative(long v) {
    if (v < 0) {
      throw new IllegalArgumentException("unsigned varint cannot encode " + v);
    }
  }
}
