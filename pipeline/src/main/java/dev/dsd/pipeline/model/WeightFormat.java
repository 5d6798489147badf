package dev.dsd.pipeline.model;

import java.util.Locale;

/**
 * The format a shard keeps its linear weights in, whatever dtype the checkpoint stores. It is part of
 * what a stage announces: stages of different formats compute different numbers, so an entry routes a
 * session only through stages of one format.
 */
public enum WeightFormat {
  /** 32-bit floats, the reference the golden vectors are checked against. */
  F32,
  /** IEEE half precision. */
  F16,
  /** Blockwise 8-bit integers with a scale per block. */
  Q8,
  /** Blockwise 4-bit integers with a scale per block. */
  Q4;

  /** The name users type and stages announce: {@code f32}, {@code f16}, {@code q8}, {@code q4}. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@link #id()}; anything else gets one line that lists the formats. */
  public static WeightFormat parse(String text) {
    for (WeightFormat f : values()) {
      if (f.id().equalsIgnoreCase(text.trim())) {
        return f;
      }
    }
    throw new IllegalArgumentException("unknown weights format '" + text + "' (expected f32, f16, q8 or q4)");
  }
}
