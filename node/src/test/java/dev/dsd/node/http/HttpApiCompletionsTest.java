package dev.dsd.node.http;

import static dev.dsd.node.http.TestApi.MODEL;
import static dev.dsd.node.http.TestApi.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenSink;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Completions and chat completions over HTTP are exactly what the generator produces directly. */
@Timeout(120)
class HttpApiCompletionsTest {
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

  static GenerationResult direct(String prompt, int maxTokens, List<String> stop) {
    return api.generator().generate(new GenerationRequest(prompt, maxTokens, 0, 1, 0, 0, false, stop), TokenSink.NONE);
  }

  static ObjectNode completion(String prompt, int maxTokens) {
    return TestApi.JSON.createObjectNode().put("model", MODEL).put("prompt", prompt).put("max_tokens", maxTokens)
        .put("temperature", 0);
  }

  static ObjectNode chat(int maxTokens, String... roleContent) {
    ObjectNode body = TestApi.JSON.createObjectNode().put("model", MODEL).put("max_tokens", maxTokens).put("temperature", 0);
    for (int i = 0; i < roleContent.length; i += 2) {
      body.withArray("messages").addObject().put("role", roleContent[i]).put("content", roleContent[i + 1]);
    }
    return body;
  }

  static JsonNode ok(HttpResponse<String> r) {
    assertEquals(200, r.statusCode(), r.body());
    return json(r);
  }

  static void assertUsage(GenerationResult want, JsonNode usage) {
    assertEquals(want.promptTokens(), usage.get("prompt_tokens").asInt(), usage.toString());
    assertEquals(want.tokenIds().length, usage.get("completion_tokens").asInt(), usage.toString());
    assertEquals(want.promptTokens() + want.tokenIds().length, usage.get("total_tokens").asInt(), usage.toString());
  }

  @Test
  void aCompletionIsTheGreedyLocalGeneration() {
    for (String prompt : new String[] {"def f(x):", "the theory of "}) {
      GenerationResult want = direct(prompt, 24, List.of());
      assertTrue(want.tokenIds().length > 5, "the fixture model should say something");
      HttpResponse<String> r = api.post("/v1/completions", completion(prompt, 24).toString());
      JsonNode body = ok(r);
      assertEquals("application/json", r.headers().firstValue("content-type").orElse(""));
      assertTrue(body.get("id").asText().startsWith("cmpl-"), body.toString());
      assertEquals("text_completion", body.get("object").asText());
      assertEquals(MODEL, body.get("model").asText());
      assertTrue(Math.abs(body.get("created").asLong() - System.currentTimeMillis() / 1000) < 60);
      assertEquals(1, body.get("choices").size());
      JsonNode choice = body.get("choices").get(0);
      assertEquals(want.text(), choice.get("text").asText());
      assertEquals(0, choice.get("index").asInt());
      assertEquals(want.finishReason(), choice.get("finish_reason").asText());
      assertUsage(want, body.get("usage"));
      JsonNode dsd = body.get("dsd");
      assertEquals(List.of("local"), List.of(dsd.get("route").get(0).asText()));
      assertEquals(want.rounds(), dsd.get("rounds").asInt());
      assertTrue(dsd.get("tokens_per_second").asDouble() > 0, dsd.toString());
      assertEquals(0, dsd.get("acceptance_rate").asDouble(), "no draft, nothing drafted");
    }
  }

  @Test
  void aPromptMayBeAnArrayOfOneStringAndTheModelMayBeOmitted() {
    ObjectNode body = TestApi.JSON.createObjectNode().put("max_tokens", 8).put("temperature", 0);
    body.putArray("prompt").add("def f(x):");
    assertEquals(direct("def f(x):", 8, List.of()).text(),
        ok(api.post("/v1/completions", body.toString())).at("/choices/0/text").asText());
  }

  @Test
  void aStreamedCompletionIsFramedAsServerSentEvents() {
    GenerationResult want = direct("def f(x):", 24, List.of());
    ObjectNode req = completion("def f(x):", 24).put("stream", true);
    req.putObject("stream_options").put("include_usage", true);
    HttpResponse<String> r = api.post("/v1/completions", req.toString());
    assertEquals(200, r.statusCode(), r.body());
    assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"), r.headers().toString());
    List<String> events = TestApi.events(r.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    List<JsonNode> chunks = new ArrayList<>();
    events.subList(0, events.size() - 1).forEach(e -> chunks.add(parse(e)));
    StringBuilder text = new StringBuilder();
    String id = chunks.get(0).get("id").asText();
    for (int i = 0; i < chunks.size() - 1; i++) {
      JsonNode c = chunks.get(i);
      assertEquals(id, c.get("id").asText(), "one id for the whole stream");
      assertEquals("text_completion", c.get("object").asText());
      assertTrue(c.get("usage").isNull(), "usage is null until the last chunk: " + c);
      JsonNode choice = c.get("choices").get(0);
      text.append(choice.get("text").asText());
      boolean last = i == chunks.size() - 2;
      assertEquals(last ? want.finishReason() : null, choice.get("finish_reason").textValue(), c.toString());
    }
    assertTrue(chunks.size() > 3, "text arrives in pieces: " + r.body());
    assertEquals(want.text(), text.toString());
    JsonNode usage = chunks.get(chunks.size() - 1);
    assertEquals(0, usage.get("choices").size());
    assertUsage(want, usage.get("usage"));
  }

  @Test
  void withoutIncludeUsageAStreamHasNoUsage() {
    HttpResponse<String> r = api.post("/v1/completions", completion("x = [1, 2, 3]\n", 6).put("stream", true).toString());
    List<String> events = TestApi.events(r.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    for (String e : events.subList(0, events.size() - 1)) {
      assertFalse(parse(e).has("usage"), e);
      assertEquals(1, parse(e).get("choices").size(), e);
    }
  }

  @Test
  void aChatCompletionIsTheRenderedConversationGenerated() {
    String[] conversation = {"system", "You write Python.", "user", "def f(x):"};
    String prompt = ChatTemplate.plain().render(List.of(new ChatMessage("system", "You write Python."),
        new ChatMessage("user", "def f(x):")));
    GenerationResult want = direct(prompt, 20, ChatTemplate.plain().stopStrings());
    JsonNode body = ok(api.post("/v1/chat/completions", chat(20, conversation).toString()));
    assertTrue(body.get("id").asText().startsWith("chatcmpl-"));
    assertEquals("chat.completion", body.get("object").asText());
    JsonNode choice = body.get("choices").get(0);
    assertEquals("assistant", choice.at("/message/role").asText());
    assertEquals(want.text(), choice.at("/message/content").asText());
    assertEquals(want.finishReason(), choice.get("finish_reason").asText());
    assertUsage(want, body.get("usage"));

    ObjectNode newer = chat(20, conversation);
    newer.remove("max_tokens");
    newer.put("max_completion_tokens", 20);
    assertEquals(want.text(), ok(api.post("/v1/chat/completions", newer.toString())).at("/choices/0/message/content").asText());
  }

  @Test
  void aStreamedChatNamesTheRoleThenSendsDeltas() {
    String prompt = ChatTemplate.plain().render(List.of(new ChatMessage("user", "the theory of ")));
    GenerationResult want = direct(prompt, 20, ChatTemplate.plain().stopStrings());
    ObjectNode req = chat(20, "user", "the theory of ").put("stream", true);
    req.putObject("stream_options").put("include_usage", true);
    List<String> events = TestApi.events(ok200(api.post("/v1/chat/completions", req.toString())));
    assertEquals("[DONE]", events.get(events.size() - 1));
    JsonNode first = parse(events.get(0));
    assertEquals("chat.completion.chunk", first.get("object").asText());
    assertEquals("assistant", first.at("/choices/0/delta/role").asText());
    StringBuilder text = new StringBuilder();
    JsonNode finish = null;
    for (String e : events.subList(1, events.size() - 2)) {
      JsonNode c = parse(e);
      assertFalse(c.at("/choices/0/delta").has("role"), e);
      if (c.at("/choices/0/finish_reason").isNull()) {
        text.append(c.at("/choices/0/delta/content").asText());
      } else {
        finish = c;
      }
    }
    assertEquals(want.text(), text.toString());
    assertEquals(want.finishReason(), finish.at("/choices/0/finish_reason").asText());
    assertEquals(0, finish.at("/choices/0/delta").size(), "the finishing delta is empty");
    assertTrue(finish.has("dsd"));
    assertUsage(want, parse(events.get(events.size() - 2)).get("usage"));
  }

  @Test
  void aChatWithoutMaxTokensMayRunToTheEndOfTheContext() {
    ObjectNode req = chat(1, "user", "def f(x):");
    req.remove("max_tokens");
    JsonNode body = ok(api.post("/v1/chat/completions", req.toString()));
    int total = body.at("/usage/total_tokens").asInt();
    assertTrue(total <= TestApi.CONTEXT, body.toString());
    assertTrue(body.at("/usage/completion_tokens").asInt() > CompletionRequests.COMPLETION_DEFAULT_MAX_TOKENS,
        "not cut at a small default: " + body);
    if (body.at("/choices/0/finish_reason").asText().equals("length")) {
      assertEquals(TestApi.CONTEXT, total, "length means the context is full");
    }
  }

  @Test
  void stopStringsCutTheTextAsAStringOrAnArray() {
    String full = direct("def f(x):", 30, List.of()).text();
    String stop = full.substring(3, 5);
    String cut = full.substring(0, full.indexOf(stop));
    JsonNode one = ok(api.post("/v1/completions", completion("def f(x):", 30).put("stop", stop).toString()));
    assertEquals(cut, one.at("/choices/0/text").asText());
    assertEquals("stop", one.at("/choices/0/finish_reason").asText());
    ObjectNode req = completion("def f(x):", 30);
    req.putArray("stop").add("\u0000never").add(stop);
    assertEquals(cut, ok(api.post("/v1/completions", req.toString())).at("/choices/0/text").asText());
  }

  @Test
  void samplingIsReproducibleBySeedAndMatchesTheGenerator() {
    ObjectNode req = completion("import os", 20).put("temperature", 0.9).put("top_p", 0.95).put("seed", 7);
    String a = ok(api.post("/v1/completions", req.toString())).at("/choices/0/text").asText();
    String b = ok(api.post("/v1/completions", req.toString())).at("/choices/0/text").asText();
    assertEquals(a, b);
    GenerationResult want = api.generator().generate(
        new GenerationRequest("import os", 20, 0.9, 0.95, 7, 0, false, List.of()), TokenSink.NONE);
    assertEquals(want.text(), a);
    String other = ok(api.post("/v1/completions", req.put("seed", 8).toString())).at("/choices/0/text").asText();
    assertNotEquals(a, other, "another seed, another sample");
  }

  @Test
  void dsdExtensionsAreAccepted() throws Exception {
    String want = direct("def f(x):", 10, List.of()).text();
    for (String spec : new String[] {"\"off\"", "0", "3", "\"auto\""}) {
      ObjectNode body = completion("def f(x):", 10);
      body.set("dsd_spec", TestApi.JSON.readTree(spec));
      assertEquals(want, ok(api.post("/v1/completions", body.toString())).at("/choices/0/text").asText(), spec);
    }
    ok(api.post("/v1/completions", completion("def f(x):", 10).put("dsd_adaptive", true).toString()));
  }

  @Test
  void twoSlotsGenerateAtOnceWithoutMixingSessions() throws Exception {
    String[] prompts = {"def f(x):", "the theory of "};
    List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
    for (String p : prompts) {
      answers.add(api.client.sendAsync(HttpRequest.newBuilder(api.uri("/v1/completions"))
          .POST(HttpRequest.BodyPublishers.ofString(completion(p, 40).toString())).build(),
          HttpResponse.BodyHandlers.ofString()));
    }
    for (int i = 0; i < prompts.length; i++) {
      assertEquals(direct(prompts[i], 40, List.of()).text(),
          ok(answers.get(i).get(60, TimeUnit.SECONDS)).at("/choices/0/text").asText());
    }
  }

  @Test
  void modelsAndHealthDescribeTheNode() {
    JsonNode list = ok(api.get("/v1/models"));
    assertEquals("list", list.get("object").asText());
    assertEquals(1, list.get("data").size());
    assertEquals(MODEL, list.at("/data/0/id").asText());
    assertEquals("model", list.at("/data/0/object").asText());
    assertEquals(TestApi.CONTEXT, list.at("/data/0/context_length").asInt());
    assertEquals(MODEL, ok(api.get("/v1/models/" + MODEL)).get("id").asText());
    JsonNode health = ok(api.get("/health?verbose=1"));
    assertEquals("ok", health.get("status").asText());
    assertEquals(2, health.get("max_sessions").asInt());
  }

  static String ok200(HttpResponse<String> r) {
    assertEquals(200, r.statusCode(), r.body());
    return r.body();
  }

  static JsonNode parse(String json) {
    try {
      return TestApi.JSON.readTree(json);
    } catch (Exception e) {
      throw new AssertionError("not JSON: " + json, e);
    }
  }
}
