package dev.dsd.node.testing;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What a protocol fuzzer sent and what became of each frame, by how the frame was made and what
 * the server did with it, plus a count per label for the report.
 *
 * @param <O> the outcomes the protocol under test can have (an error reply, a closed stream, ...)
 */
public final class FuzzTally<O extends Enum<O>> {
  /** How a frame was made. */
  public enum Kind { RANDOM, FIELD, BYTES, VALID }

  private final Class<O> outcomes;
  private final Map<Kind, EnumMap<O, Integer>> counts = new ConcurrentHashMap<>();
  private final Map<String, Integer> labels = new ConcurrentHashMap<>();

  public FuzzTally(Class<O> outcomes) {
    this.outcomes = outcomes;
  }

  public synchronized void add(Kind kind, String label, O outcome) {
    counts.computeIfAbsent(kind, k -> new EnumMap<>(outcomes)).merge(outcome, 1, Integer::sum);
    labels.merge(kind + " " + label, 1, Integer::sum);
  }

  public synchronized int total(Kind kind) {
    return counts.getOrDefault(kind, new EnumMap<>(outcomes)).values().stream().mapToInt(Integer::intValue).sum();
  }

  /**
   * The kind of fuzzed frame furthest behind its share: a quarter random, half mutated fields, a
   * quarter mutated bytes.
   */
  public Kind nextKind() {
    int n = fuzzed();
    Kind kind = Kind.RANDOM;
    double behind = n / 4.0 - total(Kind.RANDOM);
    if (n / 2.0 - total(Kind.FIELD) > behind) {
      kind = Kind.FIELD;
      behind = n / 2.0 - total(Kind.FIELD);
    }
    if (n / 4.0 - total(Kind.BYTES) > behind) {
      kind = Kind.BYTES;
    }
    return kind;
  }

  /** Frames that were not valid messages (random, mutated fields, mutated bytes). */
  public int fuzzed() {
    return total(Kind.RANDOM) + total(Kind.FIELD) + total(Kind.BYTES);
  }

  @Override
  public synchronized String toString() {
    StringBuilder b = new StringBuilder();
    for (Kind k : Kind.values()) {
      b.append(String.format("  %-7s %6d frames: %s%n", k, total(k), counts.getOrDefault(k, new EnumMap<>(outcomes))));
    }
    labels.entrySet().stream().sorted(Map.Entry.comparingByKey())
        .forEach(e -> b.append(String.format("    %-55s %6d%n", e.getKey(), e.getValue())));
    return b.toString();
  }
}
