package dev.dsd.node.generate;

/** Receives generated text while it is produced. Returning {@code false} stops generation early. */
@FunctionalInterface
public interface TokenSink {
  boolean accept(String text, int[] tokenIds);

  TokenSink NONE = (text, ids) -> true;
}
