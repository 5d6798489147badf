package dev.dsd.testnet;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Acceptance on rounds whose tokens do not repeat earlier text. A round yields its accepted drafts
 * plus the target's token; it counts as repeating when any 4-gram ending at one of those tokens
 * already occurred earlier in prompt + output. A looping text is easy for any drafter (prompt lookup
 * would do as well), so acceptance on the other rounds is the figure that says how well the draft
 * predicts new text.
 */
public final class RoundNovelty {
  /** Length of the n-gram that makes a round repeating. */
  public static final int N = 4;

  /** One round as the speculative loop saw it: drafts proposed and drafts accepted. */
  public record Round(int drafted, int accepted) {}

  /** Drafted and accepted draft tokens summed over rounds that repeat nothing, and how many such rounds. */
  public record Tally(long drafted, long accepted, int novelRounds, int rounds) {
    public Tally plus(Tally o) {
      return new Tally(drafted + o.drafted, accepted + o.accepted, novelRounds + o.novelRounds, rounds + o.rounds);
    }

    public double acceptance() {
      return drafted == 0 ? 0 : (double) accepted / drafted;
    }

    public double novelShare() {
      return rounds == 0 ? 0 : (double) novelRounds / rounds;
    }
  }

  public static final Tally EMPTY = new Tally(0, 0, 0, 0);

  private RoundNovelty() {}

  /** The rounds of one generation of {@code output} after {@code prompt}, in order. */
  public static Tally of(int[] prompt, int[] output, List<Round> rounds) {
    int[] all = new int[prompt.length + output.length];
    System.arraycopy(prompt, 0, all, 0, prompt.length);
    System.arraycopy(output, 0, all, prompt.length, output.length);
    boolean[] repeats = new boolean[all.length];
    Set<String> seen = new HashSet<>();
    for (int j = N - 1; j < all.length; j++) {
      StringBuilder key = new StringBuilder();
      for (int i = j - N + 1; i <= j; i++) {
        key.append(all[i]).append(',');
      }
      repeats[j] = !seen.add(key.toString());
    }
    long drafted = 0;
    long accepted = 0;
    int novel = 0;
    int pos = prompt.length;
    for (Round r : rounds) {
      boolean repeating = false;
      for (int j = pos; j <= pos + r.accepted() && j < all.length; j++) {
        repeating |= repeats[j];
      }
      if (!repeating && pos < all.length) {
        novel++;
        drafted += r.drafted();
        accepted += r.accepted();
      }
      pos += r.accepted() + 1;
    }
    return new Tally(drafted, accepted, novel, rounds.size());
  }
}
