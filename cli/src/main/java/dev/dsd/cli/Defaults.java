package dev.dsd.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the bundled models live: {@code models/} under the repository the launcher runs from. */
final class Defaults {
  static final String TARGET = "pycoder-target";
  static final String DRAFT = "pycoder-draft";

  private Defaults() {}

  static Path home() {
    String h = System.getProperty("dsd.home");
    return h != null ? Path.of(h) : Path.of("").toAbsolutePath();
  }

  /** The bundled draft model, or null if this checkout has none. */
  static Path draftModel() {
    Path p = home().resolve("models").resolve(DRAFT);
    return Files.isDirectory(p) ? p : null;
  }

  /** The bundled target model, or a clear error if this checkout has none. */
  static Path targetModel() {
    Path p = home().resolve("models").resolve(TARGET);
    if (!Files.isDirectory(p)) {
      throw new CliException("no --model given and the bundled model " + p + " is missing");
    }
    return p;
  }
}
