package dev.dsd.testnet;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class RoundNoveltyTest {
  @Test
  void roundsThatCloseAnEarlier4GramAreLeftOut() {
    int[] prompt = {1, 2, 3, 4, 5};
    // output 6 7 | 1 2 3 4 | 8 : the middle round re-emits the prompt's 4-gram 1 2 3 4
    int[] output = {6, 7, 1, 2, 3, 4, 8};
    List<RoundNovelty.Round> rounds = List.of(new RoundNovelty.Round(2, 1), new RoundNovelty.Round(4, 3),
        new RoundNovelty.Round(3, 0));
    RoundNovelty.Tally t = RoundNovelty.of(prompt, output, rounds);
    assertEquals(2, t.novelRounds());
    assertEquals(3, t.rounds());
    assertEquals(5, t.drafted(), "the repeating round's 4 drafts are not counted");
    assertEquals(1, t.accepted());
    assertEquals(0.2, t.acceptance(), 1e-12);
  }

  @Test
  void aRoundCutShortByTheEndOfOutputStillCounts() {
    RoundNovelty.Tally t = RoundNovelty.of(new int[] {9}, new int[] {1, 2}, List.of(new RoundNovelty.Round(4, 4)));
    assertEquals(1, t.novelRounds());
    assertEquals(4, t.accepted());
  }
}
