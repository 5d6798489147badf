package dev.dsd.testnet;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;

/**
 * Prints the first N held-out prompts, one per line, base64-encoded so that shell scripts can
 * carry prompts with newlines and quotes intact. {@code PromptList FILE N}
 */
public final class PromptList {
  private PromptList() {}

  public static void main(String[] args) throws IOException {
    var prompts = new ObjectMapper().readTree(Path.of(args[0]).toFile()).get("prompts");
    int n = Math.min(Integer.parseInt(args[1]), prompts.size());
    for (int i = 0; i < n; i++) {
      System.out.println(Base64.getEncoder().encodeToString(prompts.get(i).asText().getBytes(StandardCharsets.UTF_8)));
    }
  }
}
