package dev.dsd.testnet.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BatchServerTest {
  private record Call(String name, int tokens, List<String> log) implements BatchServer.Job {
    @Override
    public void done(double ms, int rows) {
      log.add(name + ":" + rows);
    }

    @Override
    public void lost() {
      log.add(name + ":lost");
    }
  }

  @Test
  void batchesOldestFirstWithinRowAndTokenCaps() {
    EventQueue q = new EventQueue();
    List<String> log = new ArrayList<>();
    List<List<BatchServer.Job>> calls = new ArrayList<>();
    BatchServer s = new BatchServer(q, batch -> {
      calls.add(List.copyOf(batch));
      return 10;
    }, 3, 20);
    s.submit(new Call("a", 5, log)); // starts alone at once: nothing else waits, and no timer holds it
    s.submit(new Call("b", 5, log));
    s.submit(new Call("c", 12, log));
    s.submit(new Call("d", 1, log));
    s.submit(new Call("e", 1, log));
    s.submit(new Call("f", 1, log));
    s.submit(new Call("g", 40, log));
    q.run(Double.POSITIVE_INFINITY);
    List<String> names = calls.stream().map(b -> b.stream().map(j -> ((Call) j).name()).reduce("", String::concat))
        .toList();
    // b+c = 17 tokens, + d = 18 but 3 rows is the cap; then e, f (g would exceed 20 tokens); g alone over the cap
    assertEquals(List.of("a", "bcd", "ef", "g"), names);
    assertEquals(List.of("a:1", "b:3", "c:3", "d:3", "e:2", "f:2", "g:1"), log);
    assertEquals(40, s.busyMs(), 1e-12);
    assertEquals(40, q.now(), 1e-12);
  }

  @Test
  void leavingLosesQueuedAndRunningCalls() {
    EventQueue q = new EventQueue();
    List<String> log = new ArrayList<>();
    BatchServer s = new BatchServer(q, batch -> 10, 1, 100);
    s.submit(new Call("a", 1, log));
    s.submit(new Call("b", 1, log));
    q.after(5, s::leave);
    q.run(Double.POSITIVE_INFINITY);
    s.submit(new Call("c", 1, log));
    assertEquals(List.of("a:lost", "b:lost", "c:lost"), log);
  }
}
