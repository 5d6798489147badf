package dev.dsd.pipeline.onnx;

import dev.dsd.pipeline.model.ModelConfig;

/**
 * Rotary-embedding angles per position, as Hugging Face computes them, with rope_scaling applied:
 * {@code linear} (and {@code dynamic}, applied as a static factor) divide every frequency by the
 * factor; {@code llama3} rescales low frequencies by the factor, keeps high ones and interpolates
 * between. Shared by the ONNX graph (as tables) and the Java reference.
 */
public final class RotaryTables {
  private RotaryTables() {}

  /** inv_freq[i] = theta^(-2i/hd), scaled. */
  public static double[] inverseFrequencies(ModelConfig c) {
    int half = c.headDim() / 2;
    double[] inv = new double[half];
    ModelConfig.RopeScaling s = c.ropeScaling();
    for (int i = 0; i < half; i++) {
      double f = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim());
      switch (s.type()) {
        case "linear", "dynamic" -> f /= s.factor();
        case "llama3" -> {
          double lowWavelen = s.originalMaxPositionEmbeddings() / s.lowFreqFactor();
          double highWavelen = s.originalMaxPositionEmbeddings() / s.highFreqFactor();
          double wavelen = 2 * Math.PI / f;
          if (wavelen > lowWavelen) {
            f /= s.factor();
          } else if (wavelen >= highWavelen) {
            double smooth = (s.originalMaxPositionEmbeddings() / wavelen - s.lowFreqFactor())
                / (s.highFreqFactor() - s.lowFreqFactor());
            f = (1 - smooth) * f / s.factor() + smooth * f;
          }
        }
        default -> { }
      }
      inv[i] = f;
    }
    return inv;
  }

  /** [maxPos, hd/2] row-major cos (or sin) of position x inv_freq. */
  public static float[] table(ModelConfig c, boolean sine) {
    double[] inv = inverseFrequencies(c);
    int half = inv.length;
    int n = c.maxPositionEmbeddings();
    float[] t = new float[n * half];
    for (int p = 0; p < n; p++) {
      for (int i = 0; i < half; i++) {
        // HF computes the angle in float32: position * inv_freq, both float32.
        float angle = (float) p * (float) inv[i];
        t[p * half + i] = (float) (sine ? Math.sin(angle) : Math.cos(angle));
      }
    }
    return t;
  }
}
