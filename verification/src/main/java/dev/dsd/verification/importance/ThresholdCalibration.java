package dev.dsd.verification.importance;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Picks adaptive verification's max gap from a sweep measured on training prompts: the largest gap
 * such that it and every smaller gap swept keep quality within the budget against the lossless run
 * (gap 0) and accept more drafts than it, under every sampling measured. Stopping at the first gap
 * that fails (rather than taking any gap that happens to pass) keeps a noisy sweep from choosing a
 * gap beyond one that already cost quality. 0 means adaptive verification buys nothing within the
 * budget: the rule is then exactly lossless.
 */
public final class ThresholdCalibration {
  private ThresholdCalibration() {}

  /**
   * What one run measured.
   *
   * @param sampling e.g. "greedy" or "T=0.8"; each is compared with its own lossless run
   * @param maxGap 0 for the lossless run
   * @param nextLineExact share of prompts whose next line the output reproduced exactly
   * @param nextLineSimilarity mean character-level similarity of the output's next line to the real one
   * @param distinct4 mean distinct 4-grams of the outputs
   * @param acceptance accepted / drafted tokens
   */
  public record Point(String sampling, double maxGap, double nextLineExact, double nextLineSimilarity,
      double distinct4, double acceptance) {}

  /** Most each quality figure may drop below lossless, in absolute terms (0.02 = two points). */
  public record Budget(double nextLineExactDrop, double nextLineSimilarityDrop, double distinct4Drop) {
    public Budget {
      if (!(nextLineExactDrop >= 0 && nextLineSimilarityDrop >= 0 && distinct4Drop >= 0)) {
        throw new IllegalArgumentException("budget drops must be >= 0, got " + nextLineExactDrop + ", "
            + nextLineSimilarityDrop + ", " + distinct4Drop);
      }
    }
  }

  /** The chosen gap and, per gap tried, why it passed or failed. */
  public record Choice(double maxGap, List<String> verdicts) {}

  public static Choice choose(List<Point> points, Budget budget) {
    Map<String, Point> lossless = new TreeMap<>();
    TreeSet<Double> gaps = new TreeSet<>();
    for (Point p : points) {
      if (p.maxGap() == 0) {
        lossless.put(p.sampling(), p);
      } else {
        gaps.add(p.maxGap());
      }
    }
    List<Point> sorted = new ArrayList<>(points);
    sorted.sort(Comparator.comparingDouble(Point::maxGap));
    double chosen = 0;
    List<String> verdicts = new ArrayList<>();
    for (double gap : gaps) {
      String why = null;
      for (Point p : sorted) {
        if (p.maxGap() != gap) {
          continue;
        }
        Point base = lossless.get(p.sampling());
        if (base == null) {
          throw new IllegalArgumentException("no lossless run (gap 0) for sampling " + p.sampling());
        }
        why = why != null ? why : failure(p, base, budget);
      }
      verdicts.add("gap " + gap + ": " + (why == null ? "within budget" : why));
      if (why != null) {
        break;
      }
      chosen = gap;
    }
    return new Choice(chosen, verdicts);
  }

  private static String failure(Point p, Point base, Budget b) {
    if (p.nextLineExact() < base.nextLineExact() - b.nextLineExactDrop() - 1e-12) {
      return String.format("%s next-line exact match %.3f < lossless %.3f - %.3f", p.sampling(), p.nextLineExact(),
          base.nextLineExact(), b.nextLineExactDrop());
    }
    if (p.nextLineSimilarity() < base.nextLineSimilarity() - b.nextLineSimilarityDrop() - 1e-12) {
      return String.format("%s next-line similarity %.3f < lossless %.3f - %.3f", p.sampling(), p.nextLineSimilarity(),
          base.nextLineSimilarity(), b.nextLineSimilarityDrop());
    }
    if (p.distinct4() < base.distinct4() - b.distinct4Drop() - 1e-12) {
      return String.format("%s distinct 4-grams %.3f < lossless %.3f - %.3f", p.sampling(), p.distinct4(),
          base.distinct4(), b.distinct4Drop());
    }
    if (!(p.acceptance() > base.acceptance())) {
      return String.format("%s acceptance %.3f is no gain over lossless %.3f", p.sampling(), p.acceptance(),
          base.acceptance());
    }
    return null;
  }
}
