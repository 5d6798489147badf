package dev.dsd.node.swarm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Identifies a tokenizer by the SHA-256 of its {@code tokenizer.json}: a draft can serve a target
 * only when both map text to the same ids, and equal files are the cheap, certain test of that.
 */
public final class VocabId {
  private VocabId() {}

  public static String of(Path tokenizerJson) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(tokenizerJson)));
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + tokenizerJson + ": " + e.getMessage(), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
