package dev.dsd.node.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenChoice;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.verification.processing.Penalties;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Penalties, generation_config.json defaults and logprobs through the OpenAI API: the answer must be
 * what the generator gives for the settings the request means.
 */
class HttpApiPenaltiesTest {
  static final String PROMPT = "aaaa bbbb aaaa";
  @TempDir Path tmp;
  LocalGenerator generator;
  TestApi api;

  @BeforeEach
  void start() throws Exception {
    Path model = TestApi.model(tmp);
    // the model's defaults: greedy with a repetition penalty
    Files.writeString(model.resolve("generation_config.json"), "{\"temperature\": 0, \"repetition_penalty\": 1.8}");
    generator = new LocalGenerator(model, 1);
    api = new TestApi(generator, model, 2);
  }

  @AfterEach
  void stop() {
    api.close();
    generator.close();
  }

  int[] generated(Penalties p) {
    return generator.generate(GenerationRequest.greedy(PROMPT, 12).withPenalties(p), TokenSink.NONE).tokenIds();
  }

  static int[] ids(JsonNode response) {
    JsonNode a = response.path("dsd").path("token_ids");
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).asInt();
    }
    return out;
  }

  JsonNode complete(String extra) {
    HttpResponse<String> r = api.post("/v1/completions", "{\"prompt\":\"" + PROMPT + "\",\"max_tokens\":12,\"dsd_spec\":3"
        + extra + "}");
    assertEquals(200, r.statusCode(), r.body());
    return TestApi.json(r);
  }

  @Test
  void unsetFieldsTakeTheModelsGenerationConfigAndSetOnesWin() {
    int[] penalized = generated(new Penalties(1.8, 0, 0));
    assertNotEquals(List.of(penalized), List.of(generated(Penalties.NONE)));
    assertArrayEquals(penalized, ids(complete("")), "temperature and repetition_penalty from generation_config.json");
    assertArrayEquals(generated(Penalties.NONE), ids(complete(",\"repetition_penalty\":1")));
    assertArrayEquals(generated(new Penalties(1.8, 1.5, 0.5)),
        ids(complete(",\"presence_penalty\":1.5,\"frequency_penalty\":0.5")), "OpenAI penalties are applied");
  }

  @Test
  void logprobsComeInBothShapesWithTheGeneratorsValues() {
    GenerationResult want = generator.generate(GenerationRequest.greedy(PROMPT, 12)
        .withPenalties(new Penalties(1.8, 0, 0)).withLogprobs(3), TokenSink.NONE);
    JsonNode legacy = complete(",\"logprobs\":3").path("choices").get(0).path("logprobs");
    assertEquals(12, legacy.path("tokens").size(), legacy.toString());
    JsonNode chat = TestApi.json(api.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\""
        + PROMPT + "\"}],\"max_tokens\":5,\"logprobs\":true,\"top_logprobs\":2}"));
    JsonNode content = chat.path("choices").get(0).path("logprobs").path("content");
    assertEquals(5, content.size(), chat.toString());
    assertEquals(2, content.get(0).path("top_logprobs").size());
    assertTrue(content.get(0).path("bytes").isArray());
    for (int i = 0; i < 12; i++) {
      TokenChoice c = want.logprobs().get(i);
      assertEquals(c.text(), legacy.path("tokens").get(i).asText());
      assertEquals(c.logprob(), legacy.path("token_logprobs").get(i).asDouble(), 1e-9);
      int alternatives = legacy.path("top_logprobs").get(i).size(); // tokens with the same text share a key
      assertTrue(alternatives >= 1 && alternatives <= 3, legacy.toString());
      assertTrue(c.logprob() <= 0 && c.logprob() >= c.top().get(0).logprob() - 50);
    }
    JsonNode plain = complete("").path("choices").get(0);
    assertTrue(plain.path("logprobs").isNull(), "no logprobs unless asked");
    String stream = api.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"" + PROMPT
        + "\"}],\"max_tokens\":5,\"stream\":true,\"logprobs\":true}").body();
    int streamed = 0;
    for (String e : TestApi.events(stream)) {
      if (!e.equals("[DONE]")) {
        JsonNode lp = TestApi.JSON.valueToTree(parse(e)).path("choices").path(0).path("logprobs");
        streamed += lp.path("content").size();
      }
    }
    assertEquals(5, streamed, "every token's logprob is streamed once");
  }

  static JsonNode parse(String s) {
    try {
      return TestApi.JSON.readTree(s);
    } catch (Exception e) {
      throw new AssertionError(s, e);
    }
  }

  void badRequest(String path, String body, String code, String param) {
    HttpApiErrorsTest.error(api.post(path, body), 400, "invalid_request_error", code, param);
  }

  @Test
  void badValuesAreRefusedNamingTheField() {
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"presence_penalty\":3}", "invalid_value",
        "presence_penalty");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"frequency_penalty\":\"high\"}", "invalid_value",
        "frequency_penalty");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"repetition_penalty\":0}", "invalid_value",
        "repetition_penalty");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"repetition_penalty\":1e400}", "invalid_value",
        "repetition_penalty");
    badRequest("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        + "\"top_logprobs\":2}", "invalid_value", "top_logprobs");
    badRequest("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        + "\"logprobs\":true,\"top_logprobs\":21}", "invalid_value", "top_logprobs");
  }
}
