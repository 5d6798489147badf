package dev.dsd.pipeline.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.config.ModelConfigLoader;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a random tiny model directory in Hugging Face layout: config.json, safetensors weights
 * (optionally split in two files with an index) and a small byte-level BPE tokenizer.json.
 *
 * <pre>TinyCheckpoint.builder().layers(4).hidden(64).heads(4).kvHeads(2).seed(1).writeTo(dir)</pre>
 */
public final class TinyCheckpoint {
  private String architecture = "LlamaForCausalLM";
  private int layers = 2;
  private int hidden = 32;
  private int intermediate = 64;
  private int heads = 4;
  private int kvHeads = 4;
  private int vocab = 300;
  private int maxPos = 128;
  private boolean tie = false;
  private boolean bias = false;
  private DType dtype = DType.F32;
  private long seed = 1;
  private boolean sharded = false;
  private double ropeTheta = 10000;

  public static TinyCheckpoint builder() {
    return new TinyCheckpoint();
  }

  public TinyCheckpoint layers(int v) { layers = v; return this; }
  public TinyCheckpoint hidden(int v) { hidden = v; return this; }
  public TinyCheckpoint intermediate(int v) { intermediate = v; return this; }
  public TinyCheckpoint heads(int v) { heads = v; return this; }
  public TinyCheckpoint kvHeads(int v) { kvHeads = v; return this; }
  public TinyCheckpoint vocab(int v) { vocab = v; return this; }
  public TinyCheckpoint maxPositions(int v) { maxPos = v; return this; }
  public TinyCheckpoint tied(boolean v) { tie = v; return this; }
  public TinyCheckpoint dtype(DType v) { dtype = v; return this; }
  public TinyCheckpoint seed(long v) { seed = v; return this; }
  public TinyCheckpoint sharded(boolean v) { sharded = v; return this; }

  /** Qwen2: q/k/v projections with biases. */
  public TinyCheckpoint qwen2() {
    architecture = "Qwen2ForCausalLM";
    bias = true;
    ropeTheta = 1_000_000;
    return this;
  }

  public ObjectNode configJson() {
    ObjectNode c = new ObjectMapper().createObjectNode();
    c.putArray("architectures").add(architecture);
    c.put("hidden_size", hidden);
    c.put("intermediate_size", intermediate);
    c.put("num_hidden_layers", layers);
    c.put("num_attention_heads", heads);
    c.put("num_key_value_heads", kvHeads);
    c.put("rms_norm_eps", 1e-5);
    c.put("rope_theta", ropeTheta);
    c.put("vocab_size", vocab);
    c.put("max_position_embeddings", maxPos);
    c.put("tie_word_embeddings", tie);
    c.put("bos_token_id", 0);
    c.put("eos_token_id", 0);
    return c;
  }

  /** Writes the directory and returns it. */
  public Path writeTo(Path dir) throws IOException {
    Files.createDirectories(dir);
    ObjectMapper json = new ObjectMapper();
    ObjectNode cj = configJson();
    json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cj);
    ModelConfig c = ModelConfigLoader.parse(cj, "config.json");
    SplittableRandom rnd = new SplittableRandom(seed);
    Map<String, float[]> data = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (var e : TensorNames.forShard(c, 0, layers).entrySet()) {
      shapes.put(e.getKey(), e.getValue());
    }
    for (var e : shapes.entrySet()) {
      long n = 1;
      for (long d : e.getValue()) {
        n *= d;
      }
      float[] v = new float[(int) n];
      boolean isNorm = e.getKey().endsWith("norm.weight");
      for (int i = 0; i < v.length; i++) {
        // Norm weights near 1, projections large enough that attention is far from uniform.
        v[i] = isNorm ? (float) (1 + 0.1 * rnd.nextGaussian()) : (float) (0.15 * rnd.nextGaussian());
      }
      data.put(e.getKey(), v);
    }
    if (sharded) {
      List<String> names = new ArrayList<>(data.keySet());
      int half = names.size() / 2;
      SafetensorsWriter a = new SafetensorsWriter(dtype);
      SafetensorsWriter b = new SafetensorsWriter(dtype);
      ObjectNode index = json.createObjectNode();
      ObjectNode map = index.putObject("weight_map");
      for (int i = 0; i < names.size(); i++) {
        String n = names.get(i);
        (i < half ? a : b).add(n, data.get(n), shapes.get(n));
        map.put(n, i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
      }
      a.write(dir.resolve("model-00001-of-00002.safetensors"));
      b.write(dir.resolve("model-00002-of-00002.safetensors"));
      json.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
    } else {
      SafetensorsWriter w = new SafetensorsWriter(dtype);
      data.forEach((n, v) -> w.add(n, v, shapes.get(n)));
      w.write(dir.resolve("model.safetensors"));
    }
    writeTokenizer(dir.resolve("tokenizer.json"), Math.min(vocab, 300));
    return dir;
  }

  /**
   * A byte-level BPE tokenizer.json in the exact Hugging Face format: id 0 is {@code <|endoftext|>},
   * ids 1..256 the 256 bytes (GPT-2's printable mapping), then merges of common pairs up to {@code size}.
   */
  public static void writeTokenizer(Path file, int size) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    ObjectNode eot = added.addObject();
    eot.put("id", 0).put("content", "<|endoftext|>").put("single_word", false).put("lstrip", false)
        .put("rstrip", false).put("normalized", false).put("special", true);
    root.putNull("normalizer");
    root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
        .put("trim_offsets", true).put("use_regex", true);
    root.putNull("post_processor");
    root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true)
        .put("trim_offsets", true).put("use_regex", true);
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE").putNull("dropout").putNull("unk_token").putNull("continuing_subword_prefix")
        .putNull("end_of_word_suffix").put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", false);
    ObjectNode vocab = model.putObject("vocab");
    vocab.put("<|endoftext|>", 0);
    char[] b2u = ByteLevel.BYTE_TO_CHAR;
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(b2u[b]), vocab.size());
    }
    ArrayNode merges = model.putArray("merges");
    String[][] pairs = {{"Ġ", "t"}, {"h", "e"}, {"i", "n"}, {"Ġt", "he"}, {"e", "r"}, {"o", "n"}, {"Ġ", "a"},
        {"r", "e"}, {"a", "t"}, {"Ġ", "s"}, {"e", "n"}, {"Ġ", "Ġ"}, {"ĠĠ", "ĠĠ"}, {"Ġ", "i"}, {"o", "r"},
        {"d", "e"}, {"Ġ", "f"}, {"Ġ", "="}, {"(", ")"}, {"Ċ", "Ġ"}};
    for (String[] p : pairs) {
      if (vocab.size() >= size) {
        break;
      }
      merges.addArray().add(p[0]).add(p[1]);
      vocab.put(p[0] + p[1], vocab.size());
    }
    json.writeValue(file.toFile(), root);
  }
}
