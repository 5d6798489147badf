package dev.dsd.node.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Adaptive verification's calibrated max gap for a model pair, kept in the target's directory as
 * {@code adaptive-verification.json} (written by {@code dsd bench quality --calibrate}; only
 * {@code max_gap} is read, the rest of the file records how it was chosen). Without the file the
 * built-in {@link #DEFAULT_MAX_GAP} holds. Either way adaptive verification runs only when a
 * request asks for it. A pipeline entry reads the file from its local copy of the model; where it
 * has none, the default holds.
 */
public final class AdaptiveCalibration {
  public static final String FILE = "adaptive-verification.json";
  /**
   * Gap where a model ships no calibration: 0, nothing relaxed (the output is the lossless one). A gap
   * is only as good as the pair it was measured on; an uncalibrated pair has no evidence for any.
   */
  public static final double DEFAULT_MAX_GAP = 0;
  /** The file is a few kilobytes; anything huge is not one. */
  public static final long MAX_FILE_BYTES = 1 << 20;

  private AdaptiveCalibration() {}

  /** The calibrated gap in {@code dir}, or {@link #DEFAULT_MAX_GAP} when {@code dir} is null or has no file. */
  public static double maxGap(Path dir) {
    if (dir == null || !Files.isRegularFile(dir.resolve(FILE))) {
      return DEFAULT_MAX_GAP;
    }
    Path f = dir.resolve(FILE);
    try {
      if (Files.size(f) > MAX_FILE_BYTES) {
        throw new GenerationException(f + " is " + Files.size(f) + " bytes, more than the " + MAX_FILE_BYTES
            + " a calibration may have");
      }
      JsonNode j = new ObjectMapper().readTree(f.toFile());
      JsonNode v = j == null ? null : j.get("max_gap");
      if (v == null || !v.isNumber() || !(v.doubleValue() >= 0 && v.doubleValue() < 1)) {
        throw new GenerationException(f + ": max_gap must be a number in [0, 1), got " + v);
      }
      return v.doubleValue();
    } catch (IOException e) {
      throw new GenerationException("cannot read " + f + ": " + e.getMessage(), e);
    }
  }
}
