package dev.dsd.testnet.sim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AcceptanceTraceTest {
  @TempDir
  Path dir;

  @Test
  void greedyReplayTakesTheMatchAtThePositionCappedByK() {
    AcceptanceTrace.Prompt p = new AcceptanceTrace.Prompt(5, 6, new int[] {4, 0, 2, 9, 1, 0}, 0, Map.of());
    SplittableRandom rng = new SplittableRandom(1);
    assertEquals(2, p.accepted(0, 2, 0, rng));
    assertEquals(4, p.accepted(0, 8, 0, rng));
    assertEquals(0, p.accepted(1, 8, 1, rng));
    assertEquals(3, p.accepted(3, 3, 2, rng));
    assertEquals(0, p.accepted(6, 3, 3, rng)); // past the recording
    assertEquals(0, p.accepted(0, 0, 0, rng));
  }

  @Test
  void sampledReplayFollowsRecordedRoundsAndDrawsOtherWindows() {
    AcceptanceTrace.Prompt p = new AcceptanceTrace.Prompt(5, 10, null, 0.5, Map.of(4, new int[] {1, 4, 0}));
    SplittableRandom rng = new SplittableRandom(1);
    assertEquals(1, p.accepted(0, 4, 0, rng));
    assertEquals(4, p.accepted(2, 4, 1, rng));
    assertEquals(0, p.accepted(7, 4, 2, rng));
    assertEquals(1, p.accepted(8, 4, 3, rng)); // cycles
    double sum = 0;
    for (int i = 0; i < 20_000; i++) {
      sum += p.accepted(0, 2, i, rng);
    }
    // E[min(geometric, 2)] at rate 0.5 = 0.5 + 0.25
    assertEquals(0.75, sum / 20_000, 0.02);
  }

  @Test
  void writesAndReadsBack() throws Exception {
    AcceptanceTrace t = new AcceptanceTrace("t", "d", "model", 0.8, 10, 16, List.of(
        new AcceptanceTrace.Prompt(5, 10, new int[] {1, 2, 3}, 0, Map.of()),
        new AcceptanceTrace.Prompt(6, 9, null, 0.25, Map.of(2, new int[] {0, 2}, 4, new int[] {1}))));
    Path f = dir.resolve("t.json");
    t.write(f);
    AcceptanceTrace back = AcceptanceTrace.read(f);
    assertEquals(2, back.prompts().size());
    assertArrayEquals(new int[] {1, 2, 3}, back.prompts().get(0).match());
    assertEquals(0.25, back.prompts().get(1).rate());
    assertArrayEquals(new int[] {0, 2}, back.prompts().get(1).rounds().get(2));
    assertEquals(0.8, back.temperature());
  }

  @Test
  void rejectsWhatIsNotATrace() throws Exception {
    Path f = dir.resolve("x.json");
    Files.writeString(f, "{\"format\":\"something else\"}");
    assertThrows(IllegalArgumentException.class, () -> AcceptanceTrace.read(f));
    Files.writeString(f, "{\"format\":\"dsd-acceptance-trace/1\",\"prompts\":[{\"match\":[1,-2]}]}");
    assertThrows(IllegalArgumentException.class, () -> AcceptanceTrace.read(f));
  }

  @Test
  void promptsFileSplitsOnDashLines() throws Exception {
    Path f = dir.resolve("p.txt");
    Files.writeString(f, "def a():\n  return 1\n---\n\n---\nclass B:\n   ---x\n");
    assertEquals(List.of("def a():\n  return 1", "class B:\n   ---x"), TraceRecorder.readPrompts(f));
  }
}
