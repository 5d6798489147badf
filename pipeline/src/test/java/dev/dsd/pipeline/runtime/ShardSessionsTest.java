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

  @Test
  void sessionCountAndKvBudgetAreEnforced() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2)
        .maxPositions(64).writeTo(tmp.resolve("m")))) {
      long perToken = 2L * 2 * 16 * Float.BYTES; // 2 layers x (K+V) x kvDim 16 x 4 bytes
      try (ShardRunner r = runner(ck, new RunnerOptions(1, 2, 40 * perToken, Duration.ofMinutes(1)))) {
        assertEquals(perToken, r.sessions().bytesPerToken());
        ShardSession a = r.openSession("a", "peer1", 30);
        RuntimeLimitException budget = assertThrows(RuntimeLimitException.class, () -> r.openSession("b", "p", 20));
        assertTrue(budget.getMessage().contains("KV memory budget"), budget.getMessage());
        r.openSession("b", "peer2", 10);
        RuntimeLimitException count = assertThrows(RuntimeLimitException.class, () -> r.openSession("c", "p", 1));
        assertTrue(count.getMessage().contains("limit 2"), count.getMessage());
        a.close();
        assertEquals(10 * perToken, r.sessions().reservedBytes());
        r.openSession("c", "peer3", 30);
        assertThrows(IllegalArgumentException.class, () -> r.openSession("c", "peer3", 1), "duplicate id");
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
