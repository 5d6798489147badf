package dev.dsd.node.pipeline;

import com.google.protobuf.UnsafeByteOperations;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Tensor;
import dev.dsd.pipeline.safetensors.Half;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Hidden states on the wire. F16 halves the bytes of F32 at ~3 significant digits, which the
 * residual stream tolerates (Petals sends 16-bit activations too); F32 is exact; BF16 keeps F32's
 * range for models whose activations overflow F16.
 */
public final class Activations {
  private Activations() {}

  public static Tensor encode(float[] values, int rows, int cols, DType dtype) {
    // one loop per type into a byte array handed to protobuf without a copy: a stage encodes every
    // round's hidden states, and a per-value switch through a ByteBuffer was a fifth of stage 0's Java time
    byte[] out;
    switch (dtype) {
      case F32 -> {
        out = new byte[values.length * 4];
        for (int i = 0, j = 0; i < values.length; i++, j += 4) {
          int b = Float.floatToRawIntBits(values[i]);
          out[j] = (byte) b;
          out[j + 1] = (byte) (b >>> 8);
          out[j + 2] = (byte) (b >>> 16);
          out[j + 3] = (byte) (b >>> 24);
        }
      }
      case F16, BF16 -> {
        out = new byte[values.length * 2];
        boolean f16 = dtype == DType.F16;
        for (int i = 0, j = 0; i < values.length; i++, j += 2) {
          short h = f16 ? Half.fromFloat(values[i]) : Half.bf16FromFloat(values[i]);
          out[j] = (byte) h;
          out[j + 1] = (byte) (h >>> 8);
        }
      }
      default -> throw new IllegalArgumentException("unknown activation type " + dtype);
    }
    return Tensor.newBuilder().setDtype(dtype).addShape(rows).addShape(cols)
        .setData(UnsafeByteOperations.unsafeWrap(out)).build();
  }

  /** Decodes {@code [rows, cols]}; throws IllegalArgumentException naming what does not fit. */
  public static float[] decode(Tensor t, int cols) {
    return decode(t, cols, false);
  }

  /**
   * Decodes logit rows, where -infinity is a legitimate value: the last stage masks ids beyond the
   * tokenizer's vocabulary that way. NaN and +infinity are still refused.
   */
  public static float[] decodeLogits(Tensor t, int cols) {
    return decode(t, cols, true);
  }

  private static float[] decode(Tensor t, int cols, boolean negativeInfinityAllowed) {
    if (t.getShapeCount() != 2 || t.getShape(1) != cols || t.getShape(0) < 1) {
      throw new IllegalArgumentException("hidden states of shape " + t.getShapeList() + " do not match [positions, "
          + cols + "]");
    }
    int width;
    switch (t.getDtype()) {
      case F32 -> width = 4;
      case F16, BF16 -> width = 2;
      default -> throw new IllegalArgumentException("unknown activation type " + t.getDtypeValue());
    }
    long n = (long) t.getShape(0) * cols;
    if (t.getData().size() != n * width) {
      throw new IllegalArgumentException("hidden states hold " + t.getData().size() + " bytes, shape "
          + t.getShapeList() + " of " + t.getDtype() + " needs " + n * width);
    }
    ByteBuffer b = t.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[(int) n];
    for (int i = 0; i < out.length; i++) {
      out[i] = switch (t.getDtype()) {
        case F32 -> b.getFloat();
        case F16 -> Half.toFloat(b.getShort());
        default -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
      };
      if (!Float.isFinite(out[i]) && !(negativeInfinityAllowed && out[i] == Float.NEGATIVE_INFINITY)) {
        throw new IllegalArgumentException("hidden states contain NaN or infinity at value " + i);
      }
    }
    return out;
  }
}
