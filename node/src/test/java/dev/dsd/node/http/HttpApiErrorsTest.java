package dev.dsd.node.http;

import static dev.dsd.node.http.TestApi.MODEL;
import static dev.dsd.node.http.TestApi.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.TokenSink;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Every refusal is OpenAI's error object with the right status, and none of them hurts the server. */
@Timeout(120)
class HttpApiErrorsTest {
  @TempDir static Path tmp;
  static TestApi api;

  @BeforeAll
  static void start() throws Exception {
    api = TestApi.onTinyModel(tmp, 2);
  }

  @AfterAll
  static void stop() {
    if (api != null) {
      api.close();
    }
  }

  @AfterEach
  void theServerStillServes() {
    HttpResponse<String> r = api.post("/v1/completions", "{\"prompt\":\"def f(x):\",\"max_tokens\":2}");
    assertEquals(200, r.statusCode(), r.body());
  }

  /** Checks OpenAI's error shape and returns the error object. */
  static JsonNode error(HttpResponse<String> r, int status, String type, String code, String param) {
    assertEquals(status, r.statusCode(), r.body());
    assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("application/json"), r.headers().toString());
    JsonNode body = json(r);
    Iterator<String> fields = body.fieldNames();
    assertEquals("error", fields.next(), r.body());
    assertFalse(fields.hasNext(), "only an error object: " + r.body());
    JsonNode e = body.get("error");
    assertTrue(e.get("message").isTextual() && !e.get("message").asText().isBlank(), r.body());
    assertTrue(e.get("message").asText().length() < 300, "a short message: " + r.body());
    assertEquals(type, e.get("type").asText(), r.body());
    assertTrue(e.has("param") && e.has("code"), r.body());
    assertEquals(code, e.get("code").textValue(), r.body());
    assertEquals(param, e.get("param").textValue(), r.body());
    return e;
  }

  @Test
  void aConversationTheModelsTemplateRefusesIsABadRequestWithTheTemplatesReason() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("with-mistral-template"));
    TestApi.JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), TestApi.JSON.createObjectNode()
        .put("chat_template", ChatTemplateTest.MISTRAL).put("bos_token", "<s>").put("eos_token", "</s>"));
    try (TestApi mistral = new TestApi(api.generator(), dir, 1)) {
      JsonNode e = error(mistral.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
          + "{\"role\":\"user\",\"content\":\"U\"}],\"max_tokens\":2}"), 400, "invalid_request_error", "invalid_value",
          "messages");
      assertTrue(e.get("message").asText().contains("Conversation roles must alternate"), e.toString());
      HttpResponse<String> ok = mistral.post("/v1/chat/completions",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"U\"}],\"max_tokens\":2}");
      assertEquals(200, ok.statusCode(), ok.body());
    }
  }

  static JsonNode badRequest(String path, String body, String code, String param) {
    return error(api.post(path, body), 400, "invalid_request_error", code, param);
  }

  @Test
  void malformedBodiesAre400() {
    badRequest("/v1/completions", "{\"prompt\": ", "invalid_json", null);
    badRequest("/v1/completions", "{\"prompt\": \"x\"} trailing", "invalid_json", null);
    badRequest("/v1/chat/completions", "", "invalid_value", null);
    badRequest("/v1/completions", "[1, 2]", "invalid_value", null);
  }

  @Test
  void badFieldsAre400AndNameTheField() {
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":\"ten\"}", "invalid_value", "max_tokens");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "invalid_value", "temperature");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"stream\":1}", "invalid_value", "stream");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"seed\":1.5}", "invalid_value", "seed");
    badRequest("/v1/completions", "{\"max_tokens\":3}", "invalid_value", "prompt");
    badRequest("/v1/completions", "{\"prompt\":[1,2,3]}", "unsupported_value", "prompt");
    badRequest("/v1/completions", "{\"prompt\":[\"a\",\"b\"]}", "unsupported_value", "prompt");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "invalid_value", "stop");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"stop\":\"\"}", "invalid_value", "stop");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"dsd_spec\":\"fast\"}", "invalid_value", "dsd_spec");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"dsd_adaptive\":\"yes\"}", "invalid_value", "dsd_adaptive");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"dsd_pipelined\":\"yes\"}", "invalid_value", "dsd_pipelined");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"dsd_weights\":\"q3\"}", "invalid_value", "dsd_weights");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"dsd_weights\":4}", "invalid_value", "dsd_weights");
    badRequest("/v1/chat/completions", "{\"messages\":[]}", "invalid_value", "messages");
    badRequest("/v1/chat/completions", "{\"messages\":[{\"content\":\"hi\"}]}", "invalid_value", "messages");
    badRequest("/v1/chat/completions", "{\"messages\":[{\"role\":\"tool\",\"content\":\"42\"}]}",
        "unsupported_value", "messages");
    badRequest("/v1/chat/completions",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
        "unsupported_value", "messages");
  }

  @Test
  void valuesTheGeneratorRefusesAre400WithItsMessage() {
    assertTrue(badRequest("/v1/completions", "{\"prompt\":\"x\",\"temperature\":-1}", "invalid_value", null)
        .get("message").asText().contains("temperature"));
    assertTrue(badRequest("/v1/completions", "{\"prompt\":\"x\",\"top_p\":0}", "invalid_value", null)
        .get("message").asText().contains("top_p"));
    assertTrue(badRequest("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":0}", "invalid_value", null)
        .get("message").asText().contains("max_tokens"));
    assertEquals("the prompt is empty",
        badRequest("/v1/completions", "{\"prompt\":\"\"}", "invalid_value", null).get("message").asText());
    String tooLong = badRequest("/v1/completions", "{\"prompt\":\"" + "x".repeat(2000) + "\"}", "invalid_value", null)
        .get("message").asText();
    assertTrue(tooLong.contains("context holds 256"), tooLong);
    String beyond = badRequest("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1000}", "invalid_value", null)
        .get("message").asText();
    assertTrue(beyond.contains("exceeds the model's context of 256"), beyond);
  }

  @Test
  void aStreamTheGeneratorRefusesIsAPlain400() {
    badRequest("/v1/completions", "{\"prompt\":\"" + "x".repeat(2000) + "\",\"stream\":true}", "invalid_value", null);
  }

  @Test
  void onlyOneChoiceIsServed() {
    assertTrue(badRequest("/v1/completions", "{\"prompt\":\"x\",\"n\":2}", "unsupported_value", "n")
        .get("message").asText().contains("n must be 1"));
    badRequest("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":3}",
        "unsupported_value", "n");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"logprobs\":6}", "invalid_value", "logprobs");
    badRequest("/v1/completions", "{\"prompt\":\"x\",\"echo\":true}", "unsupported_value", "echo");
    HttpResponse<String> one = api.post("/v1/completions", "{\"prompt\":\"x\",\"n\":1,\"logprobs\":null,\"max_tokens\":2}");
    assertEquals(200, one.statusCode(), one.body());
    HttpResponse<String> none = api.post("/v1/completions", "{\"prompt\":\"x\",\"logprobs\":false,\"max_tokens\":2}");
    assertEquals(200, none.statusCode(), "false means no logprobs: " + none.body());
  }

  @Test
  void anUnknownModelIs404() {
    error(api.post("/v1/completions", "{\"model\":\"gpt-4o\",\"prompt\":\"x\"}"), 404, "invalid_request_error",
        "model_not_found", "model");
    JsonNode e = error(api.post("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
        404, "invalid_request_error", "model_not_found", "model");
    assertTrue(e.get("message").asText().contains(MODEL), "says which model is served: " + e);
    error(api.get("/v1/models/gpt-4o"), 404, "invalid_request_error", "model_not_found", "model");
  }

  @Test
  void unknownRoutesAre404AndWrongMethods405() {
    error(api.get("/v1/nothing"), 404, "invalid_request_error", "unknown_url", null);
    error(api.post("/v2/completions", "{}"), 404, "invalid_request_error", "unknown_url", null);
    HttpResponse<String> get = api.get("/v1/completions");
    error(get, 405, "invalid_request_error", "method_not_allowed", null);
    assertEquals("POST", get.headers().firstValue("allow").orElse(""));
    HttpResponse<String> post = api.post("/health", "{}");
    error(post, 405, "invalid_request_error", "method_not_allowed", null);
    assertEquals("GET", post.headers().firstValue("allow").orElse(""));
    error(api.send(HttpRequest.newBuilder(api.uri("/v1/chat/completions")).DELETE()), 405, "invalid_request_error",
        "method_not_allowed", null);
  }

  @Test
  void aBodyOverTheLimitIs413() {
    String big = "{\"prompt\":\"" + "x".repeat(HttpApiConfig.DEFAULT_MAX_BODY_BYTES) + "\"}";
    JsonNode e = error(api.post("/v1/completions", big), 413, "invalid_request_error", "request_too_large", null);
    assertTrue(e.get("message").asText().contains(Integer.toString(HttpApiConfig.DEFAULT_MAX_BODY_BYTES)), e.toString());
    assertEquals(1, api.metrics.requests("/v1/completions", 413));
  }

  @Test
  void aBodyAnnouncedOverTheLimitIsRefusedBeforeItIsSent() throws Exception {
    // By hand: Java 17's HttpClient waits forever for a 100 that is not coming (JDK-8286171).
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      raw.write("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: "
          + (HttpApiConfig.DEFAULT_MAX_BODY_BYTES + 1) + "\r\n\r\n");
      String answer = raw.readUntil("}}");
      assertTrue(answer.startsWith("HTTP/1.1 413 "), answer);
      assertTrue(answer.contains("\"code\":\"request_too_large\""), answer);
    }
    assertEquals(1, api.metrics.requests("/v1/chat/completions", 413));
  }

  @Test
  void malformedHttpIs400AndClosesTheConnection() throws Exception {
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      raw.write("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: lots\r\n\r\n");
      String answer = raw.readUntil("}}");
      assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
      assertTrue(answer.contains("\"type\":\"invalid_request_error\""), answer);
      assertEquals(-1, raw.in.read(), "closed after a request it could not frame");
    }
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      raw.write("GET /" + "a".repeat(HttpApiServer.MAX_INITIAL_LINE_BYTES) + " HTTP/1.1\r\nHost: t\r\n\r\n");
      String answer = raw.readUntil("}}");
      assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
    }
  }

  @Test
  void aGeneratorFailureIsAShort500() {
    Generator broken = new Generator() {
      @Override
      public GenerationResult generate(GenerationRequest request, TokenSink sink) {
        throw new IllegalStateException("native session 0x7f3a exploded with secret details");
      }

      @Override
      public void close() {}
    };
    try (TestApi failing = new TestApi(broken, null, 1)) {
      for (boolean stream : new boolean[] {false, true}) {
        JsonNode e = error(failing.post("/v1/completions", "{\"prompt\":\"x\",\"stream\":" + stream + "}"), 500,
            "server_error", "internal_error", null);
        assertFalse(e.get("message").asText().contains("secret"), "details stay in the log: " + e);
      }
      HttpResponse<String> health = failing.get("/health");
      assertEquals(200, health.statusCode());
      assertEquals(2, failing.metrics.requests("/v1/completions", 500));
    }
  }
}
