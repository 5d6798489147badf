package dev.dsd.node.http;

import static dev.dsd.node.http.TestApi.json;
import static dev.dsd.node.metrics.PrometheusTextParser.find;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.metrics.PrometheusTextParser;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Generation slots: freed when a client hangs up, refused with 503 when taken, counted in /metrics. */
@Timeout(120)
class HttpApiSessionsTest {
  /** A long generation: 200 tokens at {@link Paced#PAUSE_MILLIS} each take seconds unless cancelled. */
  static final String LONG_STREAM = "{\"prompt\":\"def f(x):\",\"max_tokens\":200,\"temperature\":0,\"stream\":true}";
  static final String LONG_WHOLE = "{\"prompt\":\"def f(x):\",\"max_tokens\":200,\"temperature\":0}";

  @TempDir static Path tmp;
  static LocalGenerator local;
  static Paced paced;
  TestApi api;

  /** The real generator, slowed per piece of text so that a test can hang up in the middle. */
  static final class Paced implements Generator {
    static final long PAUSE_MILLIS = 25;
    final BlockingQueue<GenerationResult> results = new LinkedBlockingQueue<>();

    @Override
    public GenerationResult generate(GenerationRequest request, TokenSink sink) {
      GenerationResult r = local.generate(request, (text, ids) -> {
        try {
          Thread.sleep(PAUSE_MILLIS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
        return sink.accept(text, ids);
      });
      results.add(r);
      return r;
    }

    @Override
    public void close() {}
  }

  @BeforeAll
  static void model() throws Exception {
    local = new LocalGenerator(TestApi.model(tmp), 1);
    paced = new Paced();
  }

  @AfterAll
  static void closeModel() {
    if (local != null) {
      local.close();
    }
  }

  @BeforeEach
  void start() {
    paced.results.clear();
    // one slot and one place in the queue
    api = new TestApi(paced, null, HttpApiConfig.of("127.0.0.1", 0).withMaxConcurrentGenerations(1)
        .withMaxQueuedRequests(1));
  }

  @AfterEach
  void stop() {
    api.close();
  }

  static void await(BooleanSupplier condition, String what) throws InterruptedException {
    dev.dsd.node.testing.Await.awaitTrue(condition, () -> "timed out waiting for " + what);
  }

  /** The next request gets the one slot (allowing the few microseconds between session end and slot release). */
  void assertSlotFree() throws InterruptedException {
    await(() -> api.post("/v1/completions", "{\"prompt\":\"x = 1\",\"max_tokens\":3}").statusCode() == 200,
        "a following request to succeed");
  }

  @Test
  void hangingUpMidStreamStopsTheGeneration() throws Exception {
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      raw.post("/v1/completions", LONG_STREAM);
      String head = raw.readUntil("data: ");
      assertTrue(head.startsWith("HTTP/1.1 200 "), head);
      assertEquals(1, api.metrics.activeSessions());
    }
    GenerationResult r = paced.results.poll(5, TimeUnit.SECONDS);
    assertNotNull(r, "the generation did not stop within 5 s of the hang-up");
    assertEquals("cancelled", r.finishReason());
    assertTrue(r.tokenIds().length < 100, "stopped early: " + r.tokenIds().length + " tokens");
    await(() -> api.metrics.activeSessions() == 0, "active sessions back to 0");
    assertSlotFree();
    // the abandoned stream is counted when its task winds up, which may be after the slot it freed
    // has served the next request
    await(() -> api.metrics.requests("/v1/completions", 200) == 2, "the stream (200 sent) and the request after it "
        + "counted");
  }

  @Test
  void hangingUpBeforeAWholeAnswerStopsTheGeneration() throws Exception {
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      raw.post("/v1/completions", LONG_WHOLE);
      await(() -> api.metrics.activeSessions() == 1, "the generation to start");
    }
    GenerationResult r = paced.results.poll(5, TimeUnit.SECONDS);
    assertNotNull(r, "the generation did not stop within 5 s of the hang-up");
    assertEquals("cancelled", r.finishReason());
    await(() -> api.metrics.requests("/v1/completions", Exchange.CLIENT_CLOSED) == 1, "a 499 in the metrics");
    assertSlotFree();
  }

  @Test
  void aRequestWaitsForTheSlotAndOnlyAFullQueueIsRefusedWith503() throws Exception {
    try (TestApi.RawClient first = new TestApi.RawClient(api.server);
        TestApi.RawClient second = new TestApi.RawClient(api.server)) {
      first.post("/v1/completions", LONG_STREAM);
      first.readUntil("data: ");
      second.post("/v1/completions", "{\"prompt\":\"x = 1\",\"max_tokens\":3,\"temperature\":0,\"stream\":true}");
      await(() -> PrometheusTextParser.parse(api.metrics.render()).stream()
          .anyMatch(x -> x.name().equals("dsd_queue_depth") && x.value() == 1), "the second request to wait");
      HttpResponse<String> busy = api.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
      assertEquals(503, busy.statusCode(), busy.body());
      JsonNode e = json(busy).get("error");
      assertEquals("server_error", e.get("type").asText());
      assertEquals("server_busy", e.get("code").asText());
      assertTrue(Integer.parseInt(busy.headers().firstValue("retry-after").orElse("0")) >= 1, busy.headers().toString());
      assertEquals(200, api.get("/health").statusCode(), "routes without generation still answer");
      first.close(); // the slot frees, and the waiting request has it
      String waited = second.readUntil("data: [DONE]");
      assertTrue(waited.startsWith("HTTP/1.1 200"), waited);
    }
    List<PrometheusTextParser.Sample> m = PrometheusTextParser.parse(api.metrics.render());
    assertEquals(0, find(m, "dsd_queue_depth").value());
    assertTrue(find(m, "dsd_queue_wait_seconds_sum").value() > 0, "the second request's wait was measured");
    assertSlotFree();
  }

  @Test
  void pipelinedRequestsAreAnsweredInTurn() throws Exception {
    try (TestApi.RawClient raw = new TestApi.RawClient(api.server)) {
      String stream = "{\"prompt\":\"def f(x):\",\"max_tokens\":8,\"temperature\":0,\"stream\":true}";
      byte[] body = stream.getBytes(StandardCharsets.UTF_8);
      // Both requests in one write: the second must wait for the whole stream of the first.
      raw.write("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: " + body.length + "\r\n\r\n" + stream
          + "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
      String both = raw.readUntil("\"status\":\"ok\"");
      int done = both.indexOf("data: [DONE]");
      int second = both.indexOf("HTTP/1.1 200", 1);
      assertTrue(done > 0 && second > done, "the health answer comes after the stream: " + both);
    }
  }

  @Test
  void metricsCountWhatWasServed() throws Exception {
    int completionTokens = 0;
    int promptTokens = 0;
    for (String prompt : new String[] {"def f(x):", "the theory of "}) {
      HttpResponse<String> r = api.post("/v1/completions",
          "{\"prompt\":\"" + prompt + "\",\"max_tokens\":12,\"temperature\":0}");
      assertEquals(200, r.statusCode(), r.body());
      completionTokens += json(r).at("/usage/completion_tokens").asInt();
      promptTokens += json(r).at("/usage/prompt_tokens").asInt();
    }
    assertEquals(404, api.get("/nope/" + "x".repeat(50)).statusCode());
    api.metrics.recordStageLatency("peer-1", 0.012);
    HttpResponse<String> m = api.get("/metrics");
    assertEquals(200, m.statusCode());
    assertTrue(m.headers().firstValue("content-type").orElse("").startsWith("text/plain; version=0.0.4"));
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.body());
    assertEquals(2, find(s, "dsd_http_requests_total", "route", "/v1/completions", "status", "200").value());
    assertEquals(1, find(s, "dsd_http_requests_total", "route", "other", "status", "404").value(),
        "unknown paths share one label");
    assertEquals(completionTokens, find(s, "dsd_generated_tokens_total").value());
    assertEquals(promptTokens, find(s, "dsd_prompt_tokens_total").value());
    assertTrue(find(s, "dsd_rounds_total").value() >= completionTokens, "a round per token without a draft");
    assertEquals(0, find(s, "dsd_active_sessions").value());
    assertTrue(find(s, "dsd_last_tokens_per_second").value() > 0);
    assertEquals(1, find(s, "dsd_stage_latency_seconds_count", "stage", "peer-1").value());
  }
}
