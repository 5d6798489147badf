package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Token trees under the tree attention mask: every node's output equals a plain chain run of its
 * root-to-node path, sharded equals whole, and the accepted path compacted in the cache continues
 * exactly as the chain would.
 */
class TreeMaskTest {
  static final double TOL = 1e-4;
  static final int[] PROMPT = {5, 17, 42, 99, 3, 8};
  // root (the last accepted token) and a tree of drafts: 0 -> {1, 2, 3}, 1 -> {4, 5}, 4 -> {6}, 2 -> {7}
  static final int[] TOKENS = {11, 250, 7, 64, 1, 128, 77, 9};
  static final int[] PARENTS = {-1, 0, 0, 0, 1, 1, 4, 2};

  @TempDir Path tmp;

  static int[] path(int node) {
    List<Integer> p = new ArrayList<>();
    for (int j = node; j != TreeShape.ROOT; j = PARENTS[j]) {
      p.add(0, TOKENS[j]);
    }
    return p.stream().mapToInt(Integer::intValue).toArray();
  }

  static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  static void close(float[] expected, int eOff, float[] actual, int aOff, int n, String what) {
    for (int j = 0; j < n; j++) {
      assertTrue(Math.abs(expected[eOff + j] - actual[aOff + j]) < TOL, what + " value " + j + ": "
          + expected[eOff + j] + " vs " + actual[aOff + j]);
    }
  }

  @Test
  void treeNodesEqualTheirPathsShardedEqualsWholeAndTheAcceptedPathContinues() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(4).hidden(48).heads(6).kvHeads(2).seed(11)
        .writeTo(tmp.resolve("m")))) {
      ModelConfig c = ck.config();
      int vocab = c.vocabSize();
      RunnerOptions o = RunnerOptions.defaults();
      try (ShardRunner solo = new ShardRunner(c, ck.weights(), 0, 4, o);
          StageBatchRunner whole = new StageBatchRunner(c, ck.weights(), 0, 4, o);
          StageBatchRunner a = new StageBatchRunner(c, ck.weights(), 0, 2, o);
          StageBatchRunner b = new StageBatchRunner(c, ck.weights(), 2, 4, o)) {
        StageKv w = whole.openSession("w", "t", 64);
        StageKv ka = a.openSession("s", "t", 64);
        StageKv kb = b.openSession("s", "t", 64);
        StageKv other = whole.openSession("o", "t", 64); // a chain row batched with the tree row
        whole.forward(List.of(StageBatchRunner.Row.tokens(w, PROMPT)));
        b.forward(List.of(StageBatchRunner.Row.hidden(kb, a.forward(List.of(StageBatchRunner.Row.tokens(ka, PROMPT)))[0],
            PROMPT.length)));
        whole.forward(List.of(StageBatchRunner.Row.tokens(other, new int[] {1, 2, 3})));

        float[][] out = whole.forward(List.of(StageBatchRunner.Row.tokens(w, TOKENS).withTree(PARENTS),
            StageBatchRunner.Row.tokens(other, new int[] {4, 5})));
        float[] hidden = a.forward(List.of(StageBatchRunner.Row.tokens(ka, TOKENS).withTree(PARENTS)))[0];
        float[] sharded = b.forward(List.of(StageBatchRunner.Row.hidden(kb, hidden, TOKENS.length).withTree(PARENTS)))[0];
        close(out[0], 0, sharded, 0, out[0].length, "sharded vs whole");
        for (int node = 0; node < TOKENS.length; node++) {
          int[] chain = concat(PROMPT, path(node));
          try (ShardSession s = solo.openSession("c" + node, "t", 64)) {
            float[] ref = solo.forwardTokens(s, chain);
            close(ref, (chain.length - 1) * vocab, out[0], node * vocab, vocab, "node " + node);
          }
        }
        try (ShardSession s = solo.openSession("other", "t", 64)) {
          float[] ref = solo.forwardTokens(s, new int[] {1, 2, 3, 4, 5});
          close(ref, 3 * vocab, out[1], 0, 2 * vocab, "chain row batched with a tree");
        }

        // accept root -> 1 -> 4 -> 6: cache rows PROMPT.length + {0, 1, 4, 6}; keep the prompt and compact them
        int base = PROMPT.length;
        int[] rows = {base, base + 1, base + 4, base + 6};
        w.compact(base, rows);
        ka.compact(base, rows);
        kb.compact(base, rows);
        assertEquals(base + 4, w.length());
        int[] next = {33, 34};
        float[] cont = whole.forward(List.of(StageBatchRunner.Row.tokens(w, next)))[0];
        float[] contSharded = b.forward(List.of(StageBatchRunner.Row.hidden(kb,
            a.forward(List.of(StageBatchRunner.Row.tokens(ka, next)))[0], next.length)))[0];
        try (ShardSession s = solo.openSession("after", "t", 64)) {
          int[] chain = concat(concat(PROMPT, path(6)), next);
          float[] ref = solo.forwardTokens(s, chain);
          close(ref, (chain.length - 2) * vocab, cont, 0, 2 * vocab, "after compaction");
          close(ref, (chain.length - 2) * vocab, contSharded, 0, 2 * vocab, "after compaction, sharded");
        }

        // the draft runner grows the same tree level by level on the cache, then drops it
        try (ShardSession s = solo.openSession("levels", "t", 64)) {
          solo.forwardTokens(s, PROMPT);
          float[] l0 = solo.forwardTree(s, new int[] {TOKENS[0]}, base, new int[] {-1});
          float[] l1 = solo.forwardTree(s, new int[] {TOKENS[1], TOKENS[2], TOKENS[3]}, base, new int[] {-1, 0, 0, 0});
          float[] l2 = solo.forwardTree(s, new int[] {TOKENS[4], TOKENS[5], TOKENS[7]}, base,
              new int[] {-1, 0, 0, 0, 1, 1, 2});
          close(out[0], 0, l0, 0, vocab, "level 0");
          close(out[0], vocab, l1, 0, 3 * vocab, "level 1");
          close(out[0], 4 * vocab, l2, 0, 2 * vocab, "level 2, nodes 4 and 5");
          close(out[0], 7 * vocab, l2, 2 * vocab, vocab, "level 2, node 7");
          s.truncate(base);
          assertEquals(base, s.length());
        }
      }
    }
  }

  @Test
  void malformedTreesAreRefusedAndTheSessionStaysUsable() throws Exception {
    assertNull(TreeShape.problem(PARENTS, 16, 8));
    assertNotNull(TreeShape.problem(new int[] {-1, 1}, 16, 8), "self parent");
    assertNotNull(TreeShape.problem(new int[] {-1, 2, 1}, 16, 8), "forward reference (a cycle)");
    assertNotNull(TreeShape.problem(new int[] {-2}, 16, 8), "bad index");
    assertNotNull(TreeShape.problem(TreeShape.chain(9), 16, 8), "too deep");
    assertNotNull(TreeShape.problem(new int[17], 16, 8), "too many nodes");
    assertNotNull(TreeShape.problem(new int[0], 16, 8), "empty");
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).seed(3)
        .writeTo(tmp.resolve("m")))) {
      try (StageBatchRunner whole = new StageBatchRunner(ck.config(), ck.weights(), 0, 2, RunnerOptions.defaults())) {
        StageKv kv = whole.openSession("s", "t", 32);
        whole.forward(List.of(StageBatchRunner.Row.tokens(kv, PROMPT)));
        assertThrows(IllegalArgumentException.class, () -> whole.forward(List.of(
            StageBatchRunner.Row.tokens(kv, new int[] {1, 2, 3}).withTree(new int[] {-1, 2, 1}))));
        assertThrows(IllegalArgumentException.class, () -> whole.forward(List.of(
            StageBatchRunner.Row.tokens(kv, new int[] {1, 2}).withTree(new int[] {-1}))));
        assertThrows(IllegalArgumentException.class, () -> kv.compact(2, new int[] {3, 3}));
        assertThrows(IllegalArgumentException.class, () -> kv.compact(2, new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> kv.compact(2, new int[] {PROMPT.length}));
        assertEquals(PROMPT.length, kv.length());
        assertEquals(1, whole.forward(List.of(StageBatchRunner.Row.tokens(kv, new int[] {4}))).length);
        assertEquals(PROMPT.length + 1, kv.length());
      }
    }
  }
}
