package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Limits are refused with clear errors before memory is used, and closing gives the memory back. */
class ShardSessionsTest {
  @TempDir Path tmp;

  private ShardRunner runner(Checkpoint ck, RunnerOptions o) {
    return new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(), o);
  }

  static int[] tokens(int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = 1 + i % 10;
    }
    return t;
  }

  @Test
  void sessionsAreChargedForThePositionsTheyFillNotTheirMaximum() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2)
        .maxPositions(64).writeTo(tmp.resolve("m")))) {
      long perToken = 2L * 2 * 16 * Float.BYTES; // 2 layers x (K+V) x kvDim 16 x 4 bytes
      try (ShardRunner r = runner(ck, new RunnerOptions(1, 2, 40 * perToken, Duration.ofMinutes(1)))) {
        assertEquals(perToken, r.sessions().bytesPerToken());
        ShardSession a = r.openSession("a", "peer1", 30);
        assertEquals(0, r.sessions().reservedBytes(), "opening charges nothing");
        r.forwardTokens(a, tokens(25));
        assertEquals(25 * perToken, r.sessions().reservedBytes());
        ShardSession b = r.openSession("b", "peer2", 30); // 30 + 30 > 40 positions: fine while unused
        r.forwardTokens(b, tokens(10));
        RuntimeLimitException budget = assertThrows(RuntimeLimitException.class, () -> r.forwardTokens(b, tokens(10)));
        assertEquals("KV memory budget exhausted: session b needs " + 10 * perToken + " more bytes to grow from 10 to "
            + "20 positions (" + perToken + " bytes each); " + 5 * perToken + " of " + 40 * perToken
            + " bytes are free, 2 sessions hold the rest", budget.getMessage());
        assertEquals(10, b.length(), "a refused call leaves the cache as it was");
        RuntimeLimitException count = assertThrows(RuntimeLimitException.class, () -> r.openSession("c", "p", 1));
        assertTrue(count.getMessage().contains("limit 2"), count.getMessage());
        a.truncate(5);
        r.forwardTokens(a, tokens(3));
        assertEquals(25, a.chargedTokens(), "a rollback keeps the high-water mark: the cache tensors still hold it");
        assertEquals(35 * perToken, r.sessions().reservedBytes());
        a.close();
        assertEquals(10 * perToken, r.sessions().reservedBytes(), "closing returns what the session was charged");
        r.forwardTokens(b, tokens(20));
        assertEquals(30 * perToken, b.reservedBytes());
        ShardSession c = r.openSession("c", "peer3", 30);
        r.forwardTokens(c, tokens(10));
        assertEquals(40 * perToken, r.sessions().reservedBytes());
        c.close();
        assertThrows(IllegalArgumentException.class, () -> r.openSession("b", "peer3", 1), "duplicate id");
      }
    }
  }

  @Test
  void aFullBudgetRefusesNewSessionsSayingWhatIsFree() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(2)
        .maxPositions(64).writeTo(tmp.resolve("m")))) {
      long perToken = 2L * 16 * Float.BYTES;
      try (ShardRunner r = runner(ck, new RunnerOptions(1, 8, 8 * perToken, Duration.ofMinutes(1)))) {
        r.forwardTokens(r.openSession("a", "p", 64), tokens(8));
        RuntimeLimitException e = assertThrows(RuntimeLimitException.class, () -> r.openSession("b", "p", 4));
        assertEquals("KV memory budget exhausted: session b cannot hold a single token (" + perToken + " bytes); 0 of "
            + 8 * perToken + " bytes are free, 1 sessions hold the rest", e.getMessage());
      }
    }
  }

  @Test
  void contextAndSessionLengthLimits() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(2)
        .maxPositions(16).writeTo(tmp.resolve("m")));
        ShardRunner r = runner(ck, RunnerOptions.defaults().withThreads(1))) {
      RuntimeLimitException ctx = assertThrows(RuntimeLimitException.class, () -> r.openSession("x", "p", 17));
      assertTrue(ctx.getMessage().contains("context holds 16"), ctx.getMessage());
      ShardSession s = r.openSession("s", "p", 8);
      r.forwardTokens(s, new int[] {1, 2, 3, 4, 5, 6});
      RuntimeLimitException over = assertThrows(RuntimeLimitException.class, () -> r.forwardTokens(s, new int[] {7, 8, 9}));
      assertTrue(over.getMessage().contains("8-token limit"), over.getMessage());
      assertEquals(6, s.length(), "a refused call leaves the cache as it was");
      assertThrows(IllegalArgumentException.class, () -> r.forwardTokens(s, new int[] {999}));
      s.close();
      assertThrows(IllegalStateException.class, () -> r.forwardTokens(s, new int[] {1}));
    }
  }

  @Test
  void idleSessionsExpire() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(2)
        .writeTo(tmp.resolve("m")));
        ShardRunner r = runner(ck, new RunnerOptions(1, 4, 1L << 20, Duration.ofMillis(50)))) {
      ShardSession s = r.openSession("idle", "p", 8);
      r.forwardTokens(s, new int[] {1});
      Thread.sleep(120);
      assertEquals(List.of("idle"), r.sessions().expireIdle());
      assertTrue(s.isClosed());
      assertEquals(0, r.sessions().size());
      assertEquals(0, r.sessions().reservedBytes());
    }
  }
}
