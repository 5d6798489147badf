package dev.dsd.pipeline.model;

/**
 * A model directory that cannot be used: unsupported architecture, missing or mis-shaped tensor,
 * truncated file, config field out of range. The message names the file and the field or tensor.
 */
public class ModelFormatException extends RuntimeException {
  public ModelFormatException(String message) {
    super(message);
  }

  public ModelFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
