package dev.dsd.pipeline.runtime;

/** A request beyond a configured limit: context length, sessions, KV memory. The message quotes both. */
public class RuntimeLimitException extends RuntimeException {
  public RuntimeLimitException(String message) {
    super(message);
  }
}
