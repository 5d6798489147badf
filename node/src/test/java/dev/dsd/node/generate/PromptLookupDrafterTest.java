package dev.dsd.node.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Prompt lookup drafting: what it proposes, and that its incremental index agrees with a plain scan. */
class PromptLookupDrafterTest {

  static PromptLookupDrafter started(int... prompt) {
    PromptLookupDrafter d = new PromptLookupDrafter();
    d.start(prompt);
    return d;
  }

  @Test
  void proposesWhatFollowedTheEarlierOccurrenceOfTheLastNgram() {
    try (PromptLookupDrafter d = started(1, 2, 3, 4, 5, 1, 2, 3)) {
      assertArrayEquals(new int[] {4, 5, 1}, d.propose(3));
      assertNull(d.lastDistributions(), "lookup is deterministic");
    }
  }

  @Test
  void theLongestMatchingNgramWinsOverAMoreRecentShorterOne() {
    // 7 8 9 last occurred before 1; the single token 9 occurred more recently, before 2
    int[] context = {7, 8, 9, 1, 5, 9, 2, 6, 7, 8, 9};
    try (PromptLookupDrafter d = started(context)) {
      assertArrayEquals(new int[] {1, 5}, d.propose(2));
    }
    try (PromptLookupDrafter unigrams = new PromptLookupDrafter(1, 1)) {
      unigrams.start(context);
      assertArrayEquals(new int[] {2, 6}, unigrams.propose(2));
    }
  }

  @Test
  void theMostRecentOccurrenceWins() {
    try (PromptLookupDrafter d = started(1, 2, 9, 1, 2, 8, 1, 2)) {
      assertArrayEquals(new int[] {8, 1}, d.propose(2));
    }
  }

  @Test
  void nothingWhenNoSuffixRecursOrItIsShorterThanTheShortestNgram() {
    try (PromptLookupDrafter d = started(1, 2, 3, 4)) {
      assertArrayEquals(new int[0], d.propose(5));
    }
    try (PromptLookupDrafter bigrams = new PromptLookupDrafter(2, 3)) {
      bigrams.start(new int[] {5, 6, 5}); // 5 recurs, but no 2-gram does
      assertArrayEquals(new int[0], bigrams.propose(5));
    }
  }

  @Test
  void proposesAtMostKAndFewerNearTheEnd() {
    try (PromptLookupDrafter d = started(1, 2, 3, 4, 5, 6, 1)) {
      assertArrayEquals(new int[] {2, 3, 4}, d.propose(3));
      assertArrayEquals(new int[] {2, 3, 4, 5, 6, 1}, d.propose(10));
      assertArrayEquals(new int[0], d.propose(0));
      assertArrayEquals(new int[] {2, 3, 4, 5, 6, 1}, d.propose(Integer.MAX_VALUE));
    }
  }

  @Test
  void rejectedDraftsNeverEnterTheContext() {
    try (PromptLookupDrafter d = started(5, 6, 7, 5)) {
      int[] drafts = d.propose(3);
      assertArrayEquals(new int[] {6, 7, 5}, drafts);
      d.accepted(4, drafts, 1, 9); // context 5 6 7 5 6 9
      d.accepted(6, new int[0], 0, 7); // context 5 6 7 5 6 9 7: the rejected 7 5 left no trace
      assertArrayEquals(new int[] {5, 6, 9, 7}, d.propose(4));
    }
  }

  @Test
  void rewindingThroughAcceptedRestoresTheIndex() {
    try (PromptLookupDrafter d = started(1, 2, 3, 4)) {
      d.accepted(4, new int[] {1, 2}, 2, 3); // 1 2 3 4 1 2 3
      assertArrayEquals(new int[] {4}, d.propose(1));
      d.accepted(4, new int[] {1, 2}, 2, 8); // back to 4 tokens, then 1 2 8
      assertArrayEquals(new int[0], d.propose(3));
      // 3 now last occurred at 2; an index still holding the rolled-back 3 at 6 would propose just 3
      d.accepted(7, new int[0], 0, 3); // 1 2 3 4 1 2 8 3
      assertArrayEquals(new int[] {4, 1, 2}, d.propose(3));
    }
  }

  @Test
  void startBeginsAFreshContext() {
    try (PromptLookupDrafter d = started(1, 2, 1)) {
      d.start(new int[] {3, 1});
      assertArrayEquals(new int[0], d.propose(2));
    }
  }

  @Test
  void misuseIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new PromptLookupDrafter(0, 3));
    assertThrows(IllegalArgumentException.class, () -> new PromptLookupDrafter(3, 2));
    try (PromptLookupDrafter d = new PromptLookupDrafter()) {
      assertThrows(IllegalStateException.class, () -> d.propose(1));
      assertThrows(IllegalArgumentException.class, () -> d.start(new int[0]));
      d.start(new int[] {1, 2});
      assertThrows(IllegalArgumentException.class, () -> d.accepted(3, new int[0], 0, 1));
      assertThrows(IllegalArgumentException.class, () -> d.accepted(2, new int[] {4}, 2, 1));
    }
  }

  /**
   * Drives the drafter as the speculative loop would, on repetitive random text with occasional
   * rewinds, checking each proposal against a scan of the whole context.
   */
  @Test
  void everyProposalIsWhatANaiveScanFinds() {
    int[][] lengths = {{1, 3}, {1, 1}, {2, 4}, {3, 5}};
    int matched = 0;
    int unmatched = 0;
    for (int[] ngram : lengths) {
      for (long seed = 0; seed < 12; seed++) {
        SplittableRandom r = new SplittableRandom(seed * 31 + ngram[1]);
        List<Integer> context = new ArrayList<>();
        int promptLength = seed == 0 ? 3000 : 1 + r.nextInt(80);
        while (context.size() < promptLength) {
          context.add(nextToken(r, context));
        }
        try (PromptLookupDrafter d = new PromptLookupDrafter(ngram[0], ngram[1])) {
          d.start(toArray(context));
          for (int round = 0; round < 150; round++) {
            int k = r.nextInt(9);
            int[] drafts = d.propose(k);
            String where = "n-grams " + Arrays.toString(ngram) + " seed " + seed + " round " + round;
            assertArrayEquals(naive(context, k, ngram[0], ngram[1]), drafts, where);
            if (k > 0) {
              if (drafts.length > 0) {
                matched++;
              } else {
                unmatched++;
              }
            }
            int before = r.nextInt(12) == 0 ? 1 + r.nextInt(context.size()) : context.size();
            int kept = r.nextInt(drafts.length + 1);
            int next = nextToken(r, context.subList(0, before));
            d.accepted(before, drafts, kept, next);
            context.subList(before, context.size()).clear();
            for (int i = 0; i < kept; i++) {
              context.add(drafts[i]);
            }
            context.add(next);
          }
        }
      }
    }
    assertTrue(matched > 1000 && unmatched > 100, "both cases exercised: " + matched + " / " + unmatched);
  }

  /**
   * Half the time what followed an earlier occurrence of the last token, so stretches repeat;
   * otherwise a small alphabet, with rare tokens that match nothing.
   */
  static int nextToken(SplittableRandom r, List<Integer> context) {
    int roll = r.nextInt(10);
    if (roll < 5 && context.size() > 1) {
      int last = context.get(context.size() - 1);
      for (int p = r.nextInt(context.size() - 1); p >= 0; p--) {
        if (context.get(p) == last) {
          return context.get(p + 1);
        }
      }
    }
    return roll < 9 ? r.nextInt(6) : 100 + r.nextInt(1000);
  }

  static int[] naive(List<Integer> context, int k, int minNgram, int maxNgram) {
    int last = context.size() - 1;
    for (int n = maxNgram; n >= minNgram; n--) {
      for (int end = last - 1; end >= n - 1; end--) {
        boolean same = true;
        for (int i = 0; i < n && same; i++) {
          same = context.get(end - i).equals(context.get(last - i));
        }
        if (same) {
          return toArray(context.subList(end + 1, Math.min(end + 1 + k, context.size())));
        }
      }
    }
    return new int[0];
  }

  static int[] toArray(List<Integer> tokens) {
    return tokens.stream().mapToInt(Integer::intValue).toArray();
  }
}
