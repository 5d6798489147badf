package dev.dsd.pipeline.quant;

import dev.dsd.pipeline.model.WeightFormat;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * Blockwise symmetric quantization of a linear weight [N, K] (Hugging Face's [out, in]) into the
 * layout of ONNX Runtime's {@code com.microsoft:MatMulNBits} without zero points:
 *
 * <pre>
 *   data   uint8 [N, K/32, 32*bits/8]   per row, per block of 32 inputs; 4 bits: element 2j in the low
 *                                       nibble of byte j, 2j+1 in the high nibble
 *   scales f32   [N * K/32]             one per block
 *   w = (q - 2^(bits-1)) * scale        MatMulNBits' default zero point is 2^(bits-1)
 * </pre>
 *
 * q8 scales each block by its largest magnitude / 127. q4 follows llama.cpp's Q4_0: the value of
 * largest magnitude maps to -8 exactly, which uses all sixteen levels instead of fifteen.
 */
public final class BlockQuantizer {
  /** Inputs per block: MatMulNBits' smallest block, and the one that measured fastest here. */
  public static final int BLOCK = 32;

  private BlockQuantizer() {}

  public static int bits(WeightFormat f) {
    return switch (f) {
      case Q4 -> 4;
      case Q8 -> 8;
      default -> throw new IllegalArgumentException(f + " is not a quantized format");
    };
  }

  /** Bytes of one block's data. */
  public static int blobBytes(WeightFormat f) {
    return BLOCK * bits(f) / 8;
  }

  /**
   * Quantizes {@code rows} rows of {@code k} inputs from {@code w} (row-major) and appends their
   * blocks to {@code data} and their scales to {@code scales}. {@code k} must be a multiple of {@link #BLOCK}.
   */
  public static void quantize(WeightFormat f, float[] w, int rows, int k, ByteBuffer data, FloatBuffer scales) {
    int q4 = bits(f) == 4 ? 1 : 0;
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < k; b += BLOCK) {
        int base = r * k + b;
        if (q4 == 1) {
          float max = 0;
          float amax = 0;
          for (int i = 0; i < BLOCK; i++) {
            float v = w[base + i];
            if (Math.abs(v) > amax) {
              amax = Math.abs(v);
              max = v;
            }
          }
          float d = max / -8f;
          float id = d != 0 ? 1f / d : 0f;
          scales.put(d);
          for (int i = 0; i < BLOCK; i += 2) {
            int lo = Math.min(15, Math.max(0, Math.round(w[base + i] * id) + 8));
            int hi = Math.min(15, Math.max(0, Math.round(w[base + i + 1] * id) + 8));
            data.put((byte) (lo | (hi << 4)));
          }
        } else {
          float amax = 0;
          for (int i = 0; i < BLOCK; i++) {
            amax = Math.max(amax, Math.abs(w[base + i]));
          }
          float d = amax / 127f;
          float id = d != 0 ? 1f / d : 0f;
          scales.put(d);
          for (int i = 0; i < BLOCK; i++) {
            data.put((byte) (Math.round(w[base + i] * id) + 128));
          }
        }
      }
    }
  }

  /** The values a quantized row-block decodes to (for tests and the quality figures). */
  public static float[] dequantize(WeightFormat f, ByteBuffer data, FloatBuffer scales, int rows, int k) {
    float[] out = new float[rows * k];
    int bits = bits(f);
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < k; b += BLOCK) {
        float d = scales.get();
        for (int i = 0; i < BLOCK; i += bits == 4 ? 2 : 1) {
          int byt = data.get() & 0xff;
          if (bits == 4) {
            out[r * k + b + i] = ((byt & 15) - 8) * d;
            out[r * k + b + i + 1] = ((byt >>> 4) - 8) * d;
          } else {
            out[r * k + b + i] = (byt - 128) * d;
          }
        }
      }
    }
    return out;
  }
}
