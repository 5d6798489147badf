package dev.dsd.node.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.verification.processing.Penalties;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The official {@code openai} npm client (node/src/test/js/openai-client.mjs) against a real server:
 * a streamed chat, a completion, the model list and a refusal, read back exactly as the generator
 * produced them. The package comes from the committed lock file ({@code npm ci}, done by .ci/run);
 * when it is missing the test fails with that instruction rather than skip.
 */
@Timeout(180)
class HttpApiOpenAiClientTest {
  static final Path DIR = Path.of("src/test/js").toAbsolutePath();
  static final long CLIENT_TIMEOUT_SECONDS = 120;

  @TempDir Path tmp;

  @Test
  void theOfficialClientReadsWhatTheGeneratorProduced() throws Exception {
    if (!Files.isDirectory(DIR.resolve("node_modules/openai"))) {
      throw new IllegalStateException("the openai npm client is not installed: run `npm ci` in " + DIR + " (.ci/run does)");
    }
    Path model = TestApi.model(tmp);
    try (LocalGenerator generator = new LocalGenerator(model, 1);
        TestApi api = new TestApi(generator, model, 1)) {
      JsonNode got = runClient(api.server.url() + "/v1", TestApi.MODEL);

      assertEquals(List.of(TestApi.MODEL), List.of(got.at("/models/0").asText()));
      assertEquals(1, got.get("models").size());

      String chatPrompt = ChatTemplate.plain().render(List.of(new ChatMessage("system", "You write Python."),
          new ChatMessage("user", "def f(x):")));
      GenerationResult chat = greedy(generator, chatPrompt, 16, ChatTemplate.plain().stopStrings());
      JsonNode c = got.get("chat");
      assertEquals("assistant", c.get("role").asText(), c.toString());
      assertEquals(chat.text(), c.get("text").asText());
      assertEquals(chat.finishReason(), c.get("finishReason").asText());
      assertEquals(chat.promptTokens(), c.at("/usage/prompt_tokens").asInt(), c.toString());
      assertEquals(chat.tokenIds().length, c.at("/usage/completion_tokens").asInt(), c.toString());
      assertEquals(chat.promptTokens() + chat.tokenIds().length, c.at("/usage/total_tokens").asInt(), c.toString());
      assertTrue(c.get("chunks").asInt() >= 4, "role, text pieces, finish and usage chunks: " + c);
      assertEquals(1, c.get("ids").asInt(), "one id per stream");

      GenerationResult completion = greedy(generator, "def f(x):", 12, List.of());
      JsonNode t = got.get("completion");
      assertEquals("text_completion", t.get("object").asText());
      assertEquals(completion.text(), t.get("text").asText());
      assertEquals(completion.finishReason(), t.get("finishReason").asText());
      assertEquals(completion.tokenIds().length, t.at("/usage/completion_tokens").asInt(), t.toString());

      String penalizedPrompt = ChatTemplate.plain().render(List.of(new ChatMessage("user", "def f(x):")));
      GenerationResult penalized = generator.generate(new GenerationRequest(penalizedPrompt, 10, 0, 1, 0, 0, false,
          ChatTemplate.plain().stopStrings(), new Penalties(1, 1.5, 0.5), 2), TokenSink.NONE);
      JsonNode pen = got.get("penalized");
      assertEquals(penalized.text(), pen.get("text").asText(), pen.toString());
      assertEquals(penalized.logprobs().size(), pen.get("logprobs").size(), pen.toString());
      for (int i = 0; i < penalized.logprobs().size(); i++) {
        assertEquals(penalized.logprobs().get(i).logprob(), pen.get("logprobs").get(i).asDouble(), 1e-9);
        assertEquals(2, pen.get("tops").get(i).asInt());
      }

      JsonNode refusal = got.get("unknownModel");
      assertTrue(refusal.get("refused").asBoolean(), refusal.toString());
      assertTrue(refusal.get("notFound").asBoolean(), "the client's NotFoundError: " + refusal);
      assertEquals(404, refusal.get("status").asInt());
      assertEquals("model_not_found", refusal.get("code").asText());
      assertEquals("model", refusal.get("param").asText());
    }
  }

  static GenerationResult greedy(LocalGenerator g, String prompt, int maxTokens, List<String> stop) {
    return g.generate(new GenerationRequest(prompt, maxTokens, 0, 1, 0, 0, false, stop), TokenSink.NONE);
  }

  /** Runs the script and returns its JSON line; fails with its output when it does not give one. */
  static JsonNode runClient(String baseUrl, String model) throws IOException, InterruptedException {
    Path out = Files.createTempFile("openai-client", ".out");
    try {
      Process p = new ProcessBuilder("node", "openai-client.mjs", baseUrl, model).directory(DIR.toFile())
          .redirectErrorStream(true).redirectOutput(out.toFile()).start();
      if (!p.waitFor(CLIENT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("openai-client.mjs did not finish in " + CLIENT_TIMEOUT_SECONDS + " s: "
            + Files.readString(out, StandardCharsets.UTF_8));
      }
      String text = Files.readString(out, StandardCharsets.UTF_8);
      String last = text.strip().lines().reduce((a, b) -> b).orElse("");
      if (p.exitValue() != 0 || !last.startsWith("{")) {
        throw new AssertionError("openai-client.mjs exited " + p.exitValue() + ": " + text);
      }
      return TestApi.JSON.readTree(last);
    } finally {
      Files.deleteIfExists(out);
    }
  }
}
