package dev.dsd.cli;

/** A user error: printed as one line, exit code 2. */
final class CliException extends RuntimeException {
  CliException(String message) {
    super(message);
  }
}
