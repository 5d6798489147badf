package dev.dsd.node.generate;

/** A generation request that cannot be served; the message is fit to show to the user as is. */
public class GenerationException extends RuntimeException {
  public GenerationException(String message) {
    super(message);
  }

  public GenerationException(String message, Throwable cause) {
    super(message, cause);
  }
}
