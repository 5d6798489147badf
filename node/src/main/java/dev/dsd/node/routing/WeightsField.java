package dev.dsd.node.routing;

import dev.dsd.pipeline.model.WeightFormat;

/**
 * The {@code weights} string of {@code ShardInfo} and {@code OpenSession}: a {@link WeightFormat#id()},
 * or empty from a peer older than weight formats, which ran f32. Proto3 strings default to empty, so
 * an old peer's messages read as f32 and an f32 node's messages read the same by old peers.
 */
public final class WeightsField {
  private WeightsField() {}

  /** The format a field names; an unknown name (a newer peer's format) gets one clear line. */
  public static WeightFormat parse(String wire) {
    return wire.isEmpty() ? WeightFormat.F32 : WeightFormat.parse(wire);
  }

  /** The field's value for a format. */
  public static String of(WeightFormat format) {
    return format.id();
  }
}
