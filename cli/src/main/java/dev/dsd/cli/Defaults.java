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

  /** The held-out prompts the evaluation wrote next to the bundled models. */
  static java.util.List<String> heldOutPrompts() throws java.io.IOException {
    Path p = home().resolve("models").resolve("heldout-prompts.json");
    if (!Files.isRegularFile(p)) {
      throw new CliException("the held-out prompts " + p + " are missing");
    }
    var prompts = new com.fasterxml.jackson.databind.ObjectMapper().readTree(p.toFile()).get("prompts");
    java.util.List<String> out = new java.util.ArrayList<>();
    prompts.forEach(n -> out.add(n.asText()));
    return out;
  }
}
