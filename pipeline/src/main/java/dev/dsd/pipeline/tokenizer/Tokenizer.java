package dev.dsd.pipeline.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.pipeline.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json}, run by DJL's bindings to the Rust tokenizers library (bundled
 * native code, offline). Special tokens are neither added on encode nor dropped on decode, so
 * {@code decode(encode(s)).equals(s)} holds for byte-level BPE.
 */
public final class Tokenizer implements AutoCloseable {
  private final Path path;
  private final HuggingFaceTokenizer hf;
  private final String[] vocab;
  private final Map<String, Integer> specials;

  private Tokenizer(Path path, HuggingFaceTokenizer hf, String[] vocab, Map<String, Integer> specials) {
    this.path = path;
    this.hf = hf;
    this.vocab = vocab;
    this.specials = specials;
  }

  public static Tokenizer load(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new ModelFormatException(file + ": tokenizer file is missing");
    }
    String[] vocab;
    Map<String, Integer> specials = new HashMap<>();
    try {
      JsonNode root = new ObjectMapper().readTree(Files.readAllBytes(file));
      JsonNode v = root.path("model").path("vocab");
      if (!v.isObject()) {
        throw new ModelFormatException(file + ": model.vocab is missing (only vocabulary-based models are supported)");
      }
      int size = 0;
      var it = v.fields();
      while (it.hasNext()) {
        size = Math.max(size, it.next().getValue().asInt() + 1);
      }
      for (JsonNode t : root.path("added_tokens")) {
        size = Math.max(size, t.path("id").asInt() + 1);
        if (t.path("special").asBoolean(false)) {
          specials.put(t.path("content").asText(), t.path("id").asInt());
        }
      }
      vocab = new String[size];
      it = v.fields();
      while (it.hasNext()) {
        var e = it.next();
        vocab[e.getValue().asInt()] = e.getKey();
      }
      for (JsonNode t : root.path("added_tokens")) {
        vocab[t.path("id").asInt()] = t.path("content").asText();
      }
    } catch (IOException e) {
      throw new ModelFormatException(file + ": cannot read tokenizer: " + e.getMessage(), e);
    }
    HuggingFaceTokenizer hf;
    try {
      // DJL truncates to 512 tokens unless told not to; a prompt must never be cut silently.
      hf = HuggingFaceTokenizer.newInstance(file, Map.of(
          "addSpecialTokens", "false", "truncation", "false", "padding", "false",
          "modelMaxLength", String.valueOf(Integer.MAX_VALUE)));
    } catch (IOException | RuntimeException e) {
      throw new ModelFormatException(file + ": the tokenizers library refused it: " + e.getMessage(), e);
    }
    return new Tokenizer(file, hf, vocab, Map.copyOf(specials));
  }

  public int[] encode(String text) {
    Encoding e = hf.encode(text, false, false);
    long[] ids = e.getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = (int) ids[i];
    }
    return out;
  }

  public String decode(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      checkId(ids[i]);
      l[i] = ids[i];
    }
    return hf.decode(l, false);
  }

  private void checkId(int id) {
    if (id < 0 || id >= vocab.length) {
      throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + vocab.length + ")");
    }
  }

  /** Number of ids the tokenizer can produce (vocabulary plus added tokens). */
  public int vocabSize() {
    return vocab.length;
  }

  /** The raw vocabulary string of a token (byte-level BPE spells a space as 'Ġ', a newline as 'Ċ'). */
  public String tokenText(int id) {
    checkId(id);
    return vocab[id] == null ? "" : vocab[id];
  }

  /** Special tokens by content, e.g. {@code <|endoftext|>}. */
  public Map<String, Integer> specialTokens() {
    return specials;
  }

  public Path path() {
    return path;
  }

  /** A detokenizer for streaming: emits text only once it forms complete characters. */
  public StreamingDecoder streamingDecoder() {
    return new StreamingDecoder(this);
  }

  @Override
  public void close() {
    hf.close();
  }
}
