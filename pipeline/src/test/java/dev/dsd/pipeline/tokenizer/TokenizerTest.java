package dev.dsd.pipeline.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
  @TempDir Path tmp;

  static final String[] TEXTS = {
      "", "hello world", "def f(x):\n    return x == 1\n\n\n", "\t\ttabs and  double  spaces ",
      "unicode: café, naïve, 日本語, ∑ x²", "emoji 🙂🚀 and a zero-width joiner 👩‍💻",
      "<|endoftext|> inside text", "a".repeat(5000) + " long prompts are never truncated"};

  @Test
  void exactRoundTripAndNoTruncation() throws Exception {
    Path file = tmp.resolve("tokenizer.json");
    TinyCheckpoint.writeTokenizer(file, 277);
    try (Tokenizer t = Tokenizer.load(file)) {
      assertEquals(277, t.vocabSize());
      for (String s : TEXTS) {
        int[] ids = t.encode(s);
        assertEquals(s, t.decode(ids), "round trip of " + s.substring(0, Math.min(20, s.length())));
      }
      assertTrue(t.encode(TEXTS[TEXTS.length - 1]).length > 1000, "DJL's default 512-token truncation is off");
      assertEquals("Ġ", t.tokenText(t.encode(" ")[0]), "byte-level spelling of a space");
      assertEquals(0, t.specialTokens().get("<|endoftext|>"));
    }
  }

  @Test
  void streamingDecoderHoldsBackSplitCharacters() throws Exception {
    Path file = tmp.resolve("tokenizer.json");
    TinyCheckpoint.writeTokenizer(file, 257); // bytes only: every multi-byte character spans tokens
    try (Tokenizer t = Tokenizer.load(file)) {
      String s = "añ日🙂!";
      int[] ids = t.encode(s);
      StreamingDecoder d = t.streamingDecoder();
      StringBuilder out = new StringBuilder();
      for (int id : ids) {
        String piece = d.push(id);
        assertTrue(!piece.contains("\uFFFD"), "emitted a broken character: " + piece);
        out.append(piece);
      }
      out.append(d.flush());
      assertEquals(s, out.toString());
      assertArrayEquals(ids, t.encode(s));
    }
  }
}
