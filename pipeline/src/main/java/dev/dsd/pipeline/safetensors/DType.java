package dev.dsd.pipeline.safetensors;

import java.nio.ByteBuffer;

/** Safetensors element types dsd reads, each converted to F32 on the way in. */
public enum DType {
  F32(4),
  F16(2),
  BF16(2);

  public final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  /** Converts {@code n} little-endian elements starting at {@code src}'s position into {@code dst}. */
  void toFloats(ByteBuffer src, float[] dst, int n) {
    switch (this) {
      case F32 -> src.asFloatBuffer().get(dst, 0, n);
      case F16 -> {
        var s = src.asShortBuffer();
        for (int i = 0; i < n; i++) {
          dst[i] = Half.toFloat(s.get(i));
        }
      }
      case BF16 -> {
        var s = src.asShortBuffer();
        for (int i = 0; i < n; i++) {
          dst[i] = Float.intBitsToFloat((s.get(i) & 0xffff) << 16);
        }
      }
    }
  }
}
