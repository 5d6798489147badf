package dev.dsd.testnet.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class EventQueueTest {
  @Test
  void runsInTimeOrderAndTiesInSchedulingOrder() {
    EventQueue q = new EventQueue();
    List<String> seen = new ArrayList<>();
    q.after(5, () -> seen.add("b@" + q.now()));
    q.after(1, () -> {
      seen.add("a@" + q.now());
      q.after(4, () -> seen.add("c@" + q.now())); // also at 5, scheduled after b: runs after b
    });
    q.after(5, () -> seen.add("d@" + q.now()));
    q.run(Double.POSITIVE_INFINITY);
    assertEquals(List.of("a@1.0", "b@5.0", "d@5.0", "c@5.0"), seen);
  }

  @Test
  void stopsAtTheHorizonAndRefusesThePast() {
    EventQueue q = new EventQueue();
    List<Double> seen = new ArrayList<>();
    q.after(1, () -> seen.add(q.now()));
    q.after(10, () -> seen.add(q.now()));
    q.run(5);
    assertEquals(List.of(1.0), seen);
    assertThrows(IllegalArgumentException.class, () -> q.after(-1, () -> { }));
    q.at(0, () -> seen.add(q.now())); // a time already past runs now
    q.run(Double.POSITIVE_INFINITY);
    assertEquals(List.of(1.0, 1.0, 10.0), seen);
  }
}
