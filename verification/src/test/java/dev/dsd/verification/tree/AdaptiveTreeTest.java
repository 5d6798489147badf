package dev.dsd.verification.tree;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.Relaxation;
import dev.dsd.verification.acceptance.SparseScores;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.acceptance.UnsureUnimportant;
import dev.dsd.verification.importance.TokenImportance;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Adaptive verification applied per tree node, by the same relaxation as chains. */
class AdaptiveTreeTest {
  // TreeRulesTest's six tokens, decoded: 0, 2 and 5 are unimportant (newline, punctuation), 1, 3 and 4 are not
  static final String[] WORDS = {"\n", " x", ",", " parse_line", " 42", "("};

  static UnsureUnimportant relax(double maxGap) {
    return new UnsureUnimportant(TokenImportance.of(WORDS.length, id -> WORDS[id], TokenImportance.Weights.DEFAULT),
        maxGap);
  }

  @Test
  void theVocabularyIsClassedAsTheTestsAssume() {
    TokenImportance t = TokenImportance.of(WORDS.length, id -> WORDS[id], TokenImportance.Weights.DEFAULT);
    for (int v = 0; v < WORDS.length; v++) {
      assertEquals(v == 0 || v == 2 || v == 5, t.unimportant(v), WORDS[v]);
    }
  }

  @Test
  void aZeroGapIsExactlyTheLosslessRule() {
    SplittableRandom r = new SplittableRandom(3);
    UnsureUnimportant greedyRelax = relax(0);
    UnsureUnimportant sampledRelax = relax(0);
    for (int i = 0; i < 400; i++) {
      int[] ctx = {r.nextInt(TreeRulesTest.V), r.nextInt(TreeRulesTest.V)};
      DraftTree tree = (i % 2 == 0 ? TreeRulesTest.topK(3, 2, 1) : TreeRulesTest.sampled(2, 2)).grow(ctx, r);
      TargetScores s = TreeRulesTest.scores(ctx, tree);
      same(new GreedyTree().decide(tree, s), new GreedyTree(greedyRelax).decide(tree, s), tree);
      same(new MultiDraftSampling(i).decide(tree, s), new MultiDraftSampling(i, sampledRelax).decide(tree, s), tree);
    }
    assertEquals(0, greedyRelax.kept() + sampledRelax.kept());
    assertTrue(new GreedyTree().lossless() && new MultiDraftSampling(1).lossless());
    assertTrue(!new GreedyTree(relax(0.1)).lossless() && !new MultiDraftSampling(1, relax(0.1)).lossless());
  }

  /** Root row: token 1 (" x") at 0.40 is the argmax, {@code runnerUp} at 0.38; every other row puts 0.9 on token 4. */
  static TargetScores nearTie(int runnerUp, int rows) {
    double[][] p = new double[rows][];
    p[0] = new double[TreeRulesTest.V];
    p[0][1] = 0.40;
    p[0][runnerUp] = 0.38;
    double rest = (1 - 0.78) / (TreeRulesTest.V - 2);
    for (int v = 0; v < TreeRulesTest.V; v++) {
      p[0][v] = v == 1 || v == runnerUp ? p[0][v] : rest;
    }
    for (int i = 1; i < rows; i++) {
      p[i] = new double[TreeRulesTest.V];
      java.util.Arrays.fill(p[i], 0.1 / (TreeRulesTest.V - 1));
      p[i][4] = 0.9;
    }
    return TreeRulesTest.rows(p);
  }

  @Test
  void greedyGoesDownAnUnimportantChildTheTargetIsUnsureAbout() {
    // root children: token 3 (not the argmax, far behind), then token 2 ("," at 0.38, 0.02 behind); under it token 4
    DraftTree tree = new DraftTree(new int[] {3, 2, 4}, new int[] {TreeShape.ROOT, TreeShape.ROOT, 1}, new double[4][]);
    UnsureUnimportant wide = relax(0.05);
    TreeRule.Verdict v = new GreedyTree(wide).decide(tree, nearTie(2, 4));
    assertArrayEquals(new int[] {1, 2}, v.path(), "kept ',' and then the argmax under it");
    assertEquals(4, v.next());
    assertEquals(1, wide.kept());
    assertArrayEquals(new int[0], new GreedyTree(relax(0.01)).decide(tree, nearTie(2, 4)).path(), "gap 0.02 > 0.01");
    assertArrayEquals(new int[0], new GreedyTree().decide(tree, nearTie(2, 4)).path());
    // the same near tie on an important token (" parse_line") is never relaxed
    DraftTree important = new DraftTree(new int[] {3}, new int[] {TreeShape.ROOT}, new double[2][]);
    assertArrayEquals(new int[0], new GreedyTree(relax(0.5)).decide(important, nearTie(3, 2)).path());
  }

  @Test
  void samplingKeepsARelaxableChildItWouldOftenReject() {
    DraftTree tree = new DraftTree(new int[] {2}, new int[] {TreeShape.ROOT}, new double[2][]);
    int lossless = 0;
    int adaptive = 0;
    for (int seed = 0; seed < 300; seed++) {
      lossless += new MultiDraftSampling(seed).decide(tree, nearTie(2, 2)).accepted();
      adaptive += new MultiDraftSampling(seed, relax(0.05)).decide(tree, nearTie(2, 2)).accepted();
    }
    assertEquals(300, adaptive);
    assertTrue(lossless > 80 && lossless < 150, "lossless keeps ',' with probability 0.38: " + lossless);
  }

  @Test
  void theLastStagesTreeSummaryGivesTheVerdictsOfTheFullScores() {
    SplittableRandom r = new SplittableRandom(11);
    for (int i = 0; i < 300; i++) {
      int[] ctx = {r.nextInt(TreeRulesTest.V), r.nextInt(TreeRulesTest.V), r.nextInt(TreeRulesTest.V)};
      DraftTree tree = TreeRulesTest.topK(3, 2).grow(ctx, r);
      TargetScores full = TreeRulesTest.scores(ctx, tree);
      int[] testedAt = new int[tree.size()];
      for (int n = 0; n < tree.size(); n++) {
        testedAt[n] = tree.parents()[n] + 1; // a node is tested at its parent's row
      }
      SparseScores sparse = SparseScores.summarize(full, tree.tokens(), testedAt, false);
      for (double gap : new double[] {0, 0.05, 0.3}) {
        same(new GreedyTree(relax(gap)).decide(tree, full), new GreedyTree(relax(gap)).decide(tree, sparse), tree);
      }
    }
    TargetScores two = TreeRulesTest.scores(new int[] {1}, DraftTree.empty());
    assertThrows(IllegalArgumentException.class, () -> SparseScores.summarize(two, new int[] {1}, new int[] {1}, false));
  }

  @Test
  void aChainSummaryIsUnchangedByTheTreeForm() {
    float[] logits = new float[3 * TreeRulesTest.V];
    SplittableRandom r = new SplittableRandom(5);
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) r.nextGaussian();
    }
    LogitScores full = new LogitScores(logits, TreeRulesTest.V, 0, 1);
    int[] drafts = {2, 4};
    SparseScores a = SparseScores.summarize(full, drafts, false);
    SparseScores b = SparseScores.summarize(full, drafts, new int[] {0, 1}, false);
    for (int row = 0; row < 3; row++) {
      assertArrayEquals(a.ids()[row], b.ids()[row]);
      assertArrayEquals(a.probs()[row], b.probs()[row]);
    }
  }

  static void same(TreeRule.Verdict want, TreeRule.Verdict got, DraftTree tree) {
    assertArrayEquals(want.path(), got.path(), tree.toString());
    assertEquals(want.next(), got.next(), tree.toString());
  }
}
