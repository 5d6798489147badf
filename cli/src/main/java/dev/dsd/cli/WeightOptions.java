package dev.dsd.cli;

import dev.dsd.pipeline.model.WeightFormat;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --weights} and {@code --weights-cache}, shared by the commands that load a model. */
final class WeightOptions {
  /** The format a model loads in unless told otherwise; the README says why. */
  static final String DEFAULT = "f32";

  @Option(names = "--weights", paramLabel = "f32|f16|q8|q4", defaultValue = DEFAULT, description = {
    "Format the model's weights are kept in (default: ${DEFAULT-VALUE}): f32, f16, or blockwise",
    "8/4-bit quantized (q8, q4) computed at load and cached (see --weights-cache)."})
  String weights;

  @Option(names = "--weights-cache", paramLabel = "DIR|none", description = {
    "Where run-format weights are cached, keyed by model id, layers and format (default:",
    "~/.cache/dsd/weights); 'none' writes a temporary file instead."})
  String cache;

  WeightFormat format() {
    try {
      return WeightFormat.parse(weights);
    } catch (IllegalArgumentException e) {
      throw new CliException(e.getMessage());
    }
  }

  /** The cache directory, or null for none. */
  Path cacheDir() {
    if (cache == null) {
      return Path.of(System.getProperty("user.home"), ".cache", "dsd", "weights");
    }
    return cache.equals("none") ? null : Path.of(cache);
  }
}
