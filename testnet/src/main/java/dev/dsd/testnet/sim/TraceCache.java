package dev.dsd.testnet.sim;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;

/**
 * Recording a trace runs the real models (seconds to minutes); the result is kept under
 * {@code $TMPDIR/dsd-sim-traces}, named by a hash of everything it depends on, and reused.
 */
public final class TraceCache {
  private TraceCache() { }

  public static Path dir() {
    return Path.of(System.getProperty("java.io.tmpdir"), "dsd-sim-traces");
  }

  public static AcceptanceTrace traceFor(Path promptsFile, Path target, Path draft, String drafter, int maxTokens,
      double temperature, long seed, Consumer<String> progress) throws IOException {
    List<String> prompts = TraceRecorder.readPrompts(promptsFile);
    if (temperature > 0 && drafter.equals("lookup")) {
      throw new IllegalArgumentException("sampled traces need the draft model (prompt lookup is recorded greedy only)");
    }
    String key = hash(String.join("\u0000", prompts) + "|" + target.toAbsolutePath() + "|" + draft.toAbsolutePath() + "|"
        + drafter + "|" + maxTokens + "|" + temperature + "|" + seed);
    Path file = dir().resolve("trace-" + key + ".json");
    if (Files.isRegularFile(file)) {
      progress.accept("trace from cache " + file);
      return AcceptanceTrace.read(file);
    }
    AcceptanceTrace t = TraceRecorder.record(target, draft, drafter, prompts, maxTokens, temperature, seed, progress);
    Files.createDirectories(dir());
    Path tmp = Files.createTempFile(dir(), "trace", ".tmp");
    t.write(tmp);
    Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    progress.accept("trace cached in " + file);
    return t;
  }

  private static String hash(String s) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 12);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
