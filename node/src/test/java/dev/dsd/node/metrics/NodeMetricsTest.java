package dev.dsd.node.metrics;

import static dev.dsd.node.metrics.PrometheusTextParser.find;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.GenerationResult;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class NodeMetricsTest {
  static GenerationResult result(int tokens, int prompt, int rounds, long drafted, long accepted, double seconds) {
    return new GenerationResult("x", new int[tokens], prompt, "length", seconds, rounds, drafted, accepted,
        List.of("local"), 100);
  }

  @Test
  void generationsAddUpAndRenderAsPrometheusText() {
    NodeMetrics m = new NodeMetrics();
    m.record(result(10, 5, 4, 12, 6, 2.0));
    m.record(result(30, 7, 10, 28, 21, 1.5));
    m.recordRequest("/v1/completions", 200);
    m.recordRequest("/v1/completions", 200);
    m.recordRequest("other", 404);
    m.sessionStarted();
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.render());
    assertEquals(40, find(s, "dsd_generated_tokens_total").value());
    assertEquals(12, find(s, "dsd_prompt_tokens_total").value());
    assertEquals(14, find(s, "dsd_rounds_total").value());
    assertEquals(40, find(s, "dsd_drafted_tokens_total").value());
    assertEquals(27, find(s, "dsd_accepted_tokens_total").value());
    assertEquals(27.0 / 40, find(s, "dsd_acceptance_rate").value(), 1e-12);
    assertEquals(20, find(s, "dsd_last_tokens_per_second").value(), 1e-12, "the last generation: 30 tokens / 1.5 s");
    assertEquals(200, find(s, "dsd_bytes_sent_total").value());
    assertEquals(1, find(s, "dsd_active_sessions").value());
    assertEquals(2, find(s, "dsd_generations_total", "finish_reason", "length").value());
    assertEquals(2, find(s, "dsd_http_requests_total", "route", "/v1/completions", "status", "200").value());
    assertEquals(1, find(s, "dsd_http_requests_total", "route", "other", "status", "404").value());
    m.sessionEnded();
    assertEquals(0, m.activeSessions());
  }

  @Test
  void failoversSpotChecksAndBansAreCounted() {
    NodeMetrics m = new NodeMetrics();
    List<PrometheusTextParser.Sample> none = PrometheusTextParser.parse(m.render());
    assertEquals(0, find(none, "dsd_failover_stall_seconds_count").value());
    m.recordResilience(0, 0, 3);
    m.recordResilience(2, 300_000_000L, 1);
    m.recordResilience(1, 100_000_000L, 0);
    m.peerBanned();
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.render());
    assertEquals(3, find(s, "dsd_failovers_total").value());
    assertEquals(4, find(s, "dsd_spot_checks_total").value());
    assertEquals(1, find(s, "dsd_peers_banned_total").value());
    assertEquals(2, find(s, "dsd_failover_stall_seconds_count").value(), "generations without failover add no stall");
    assertEquals(0.4, find(s, "dsd_failover_stall_seconds_sum").value(), 1e-12);
    assertEquals(0.2, find(s, "dsd_failover_stall_seconds", "quantile", "0.5").value(), 1e-12);
  }

  @Test
  void stageLatencyIsASummaryWithTheMedianOfRecentRounds() {
    NodeMetrics m = new NodeMetrics();
    for (int i = 1; i <= 5; i++) {
      m.recordStageLatency("peer \"a\"\\1", i / 100.0);
    }
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.render());
    String stage = "peer \"a\"\\1"; // escaped on the way out, read back intact
    assertEquals(0.03, find(s, "dsd_stage_latency_seconds", "stage", stage, "quantile", "0.5").value(), 1e-12);
    assertEquals(0.15, find(s, "dsd_stage_latency_seconds_sum", "stage", stage).value(), 1e-12);
    assertEquals(5, find(s, "dsd_stage_latency_seconds_count", "stage", stage).value());
  }

  @Test
  void theMedianFollowsOnlyTheWindow() {
    LatencySummary l = new LatencySummary(4);
    assertTrue(Double.isNaN(l.median()));
    for (double v : new double[] {100, 100, 100, 100, 1, 2, 3, 4}) {
      l.record(v);
    }
    assertEquals(2.5, l.median(), 1e-12, "the four old 100s left the window");
    assertEquals(8, l.count());
    assertEquals(410, l.sum(), 1e-9);
    assertThrows(IllegalArgumentException.class, () -> l.record(-1));
    assertThrows(IllegalArgumentException.class, () -> l.record(Double.NaN));
  }

  @Test
  void concurrentWritersLoseNothing() throws Exception {
    NodeMetrics m = new NodeMetrics();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    CountDownLatch go = new CountDownLatch(1);
    for (int t = 0; t < 4; t++) {
      pool.execute(() -> {
        try {
          go.await();
        } catch (InterruptedException e) {
          return;
        }
        for (int i = 0; i < 1000; i++) {
          m.record(result(1, 1, 1, 0, 0, 0.1));
          m.recordRequest("/v1/completions", 200);
          m.recordStageLatency("s1", 0.001);
        }
      });
    }
    go.countDown();
    pool.shutdown();
    assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.render());
    assertEquals(4000, find(s, "dsd_generated_tokens_total").value());
    assertEquals(4000, m.requests("/v1/completions", 200));
    assertEquals(4000, find(s, "dsd_stage_latency_seconds_count", "stage", "s1").value());
    assertEquals(0, find(s, "dsd_acceptance_rate").value(), "nothing drafted");
  }

  @Test
  void theParserRefusesWhatPrometheusWould() {
    assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse("x 1\n"), "no TYPE");
    assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse("# TYPE x gauge\nx 1"), "no newline");
    assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse("# TYPE x gauge\nx 1.0E-5x\n"));
    assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse("# TYPE x gauge\nx{a=\"b} 1\n"));
    assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse("# TYPE x gauge\nx 1\n# TYPE x gauge\n"));
    assertEquals(1e-5, PrometheusTextParser.parse("# TYPE x gauge\nx 1.0E-5\n").get(0).value());
  }

  @Test
  void tokenTimingAndQueueRenderAsHistograms() throws Exception {
    NodeMetrics m = new NodeMetrics();
    long start = System.nanoTime() - 300_000_000L; // the request arrived 0.3 s ago
    dev.dsd.node.generate.TokenSink sink = m.timed((text, ids) -> true, start);
    sink.accept("a", new int[] {1});
    Thread.sleep(20);
    sink.accept("bcd", new int[] {2, 3, 4}); // a burst of 3 after ~20 ms: 3 gaps of ~7 ms
    m.recordQueueWait(0.3);
    m.queueDepth(() -> 5);
    Histogram rows = new Histogram(1, 2, 4);
    rows.record(1);
    rows.record(3);
    rows.record(9);
    m.stageBatchRows(rows);
    List<PrometheusTextParser.Sample> s = PrometheusTextParser.parse(m.render());
    assertEquals(1, find(s, "dsd_time_to_first_token_seconds_count").value());
    assertTrue(find(s, "dsd_time_to_first_token_seconds_sum").value() >= 0.3);
    assertEquals(0, find(s, "dsd_time_to_first_token_seconds_bucket", "le", "0.25").value());
    assertEquals(1, find(s, "dsd_time_to_first_token_seconds_bucket", "le", "0.5").value());
    assertEquals(3, find(s, "dsd_inter_token_latency_seconds_count").value());
    double gaps = find(s, "dsd_inter_token_latency_seconds_sum").value();
    assertTrue(gaps >= 0.019 && gaps < 1, "the three gaps add up to the pause: " + gaps);
    assertEquals(5, find(s, "dsd_queue_depth").value());
    assertEquals(1, find(s, "dsd_queue_wait_seconds_count").value());
    assertEquals(1, find(s, "dsd_stage_batch_rows_bucket", "le", "1").value());
    assertEquals(1, find(s, "dsd_stage_batch_rows_bucket", "le", "2").value());
    assertEquals(2, find(s, "dsd_stage_batch_rows_bucket", "le", "4").value());
    assertEquals(3, find(s, "dsd_stage_batch_rows_bucket", "le", "+Inf").value());
    assertEquals(13, find(s, "dsd_stage_batch_rows_sum").value());
  }
}
