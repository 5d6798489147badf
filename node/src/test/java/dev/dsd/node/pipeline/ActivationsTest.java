package dev.dsd.node.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Tensor;
import dev.dsd.pipeline.safetensors.Half;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ActivationsTest {
  /** The wire bytes are little-endian values of the type, whatever the encoder's loop looks like. */
  @Test
  void encodesLittleEndianValuesAndDecodesThemBack() {
    SplittableRandom rnd = new SplittableRandom(4);
    float[] v = new float[3 * 8];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (rnd.nextGaussian() * 100);
    }
    v[0] = 0f;
    v[1] = -0f;
    v[2] = 65504f;
    v[3] = 1e-6f; // subnormal in F16
    for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16}) {
      Tensor enc = Activations.encode(v, 3, 8, t);
      ByteBuffer want = ByteBuffer.allocate(v.length * (t == DType.F32 ? 4 : 2)).order(ByteOrder.LITTLE_ENDIAN);
      float[] back = new float[v.length];
      for (int i = 0; i < v.length; i++) {
        switch (t) {
          case F32 -> {
            want.putFloat(v[i]);
            back[i] = v[i];
          }
          case F16 -> {
            want.putShort(Half.fromFloat(v[i]));
            back[i] = Half.toFloat(Half.fromFloat(v[i]));
          }
          default -> {
            want.putShort(Half.bf16FromFloat(v[i]));
            back[i] = Float.intBitsToFloat((Half.bf16FromFloat(v[i]) & 0xffff) << 16);
          }
        }
      }
      assertArrayEquals(want.array(), enc.getData().toByteArray(), t.toString());
      assertEquals(java.util.List.of(3, 8), enc.getShapeList());
      assertArrayEquals(back, Activations.decode(enc, 8), t.toString());
    }
  }
}
