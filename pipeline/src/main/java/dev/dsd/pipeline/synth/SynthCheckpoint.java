package dev.dsd.pipeline.synth;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.config.ModelConfigLoader;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.safetensors.SafetensorsStreamWriter;
import dev.dsd.pipeline.safetensors.SafetensorsWeights;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a random-weight checkpoint of a {@link SynthShape} in Hugging Face layout: {@code config.json},
 * {@code model.safetensors} (or numbered files plus {@code model.safetensors.index.json} when the shape
 * splits its files), and a {@code tokenizer.json} copied from a real model. Tensor names and shapes come
 * from {@link TensorNames} applied to the config the loader reads back, so what is written is exactly
 * what dsd loads. Memory stays at one chunk whatever the model's size.
 *
 * <p>Values are uniform with the variance of a trained model's init: linear weights 1/sqrt(in), norms 1,
 * biases +-0.02. Each tensor's stream is seeded from its name, so equal arguments give equal files.
 */
public final class SynthCheckpoint {
  private SynthCheckpoint() {}

  /** What was written: the directory, its config and the weight bytes. */
  public record Result(Path dir, ModelConfig config, long weightBytes, List<Path> files) {}

  public static Result write(SynthShape shape, Path dir, DType dtype, Path tokenizerJson, long seed) throws IOException {
    Files.createDirectories(dir);
    Path configFile = dir.resolve("config.json");
    Files.writeString(configFile, configJson(shape, dtype), StandardCharsets.UTF_8);
    ModelConfig config = ModelConfigLoader.load(configFile);
    Files.copy(tokenizerJson, dir.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
    Map<String, long[]> tensors = TensorNames.forShard(config, 0, config.numLayers());

    // Group tensors, in order, into files of at most shardBytes (one file when 0).
    List<SafetensorsStreamWriter> groups = new ArrayList<>();
    Map<String, Integer> groupOf = new LinkedHashMap<>();
    SafetensorsStreamWriter current = null;
    long currentBytes = 0;
    long total = 0;
    for (var e : tensors.entrySet()) {
      long bytes = elements(e.getValue()) * dtype.bytes;
      if (current == null || (shape.shardBytes() > 0 && currentBytes > 0 && currentBytes + bytes > shape.shardBytes())) {
        current = new SafetensorsStreamWriter(dtype);
        groups.add(current);
        currentBytes = 0;
      }
      current.add(e.getKey(), e.getValue());
      groupOf.put(e.getKey(), groups.size() - 1);
      currentBytes += bytes;
      total += bytes;
    }
    RandomFiller filler = new RandomFiller(tensors, seed);
    List<Path> files = new ArrayList<>();
    if (shape.shardBytes() == 0) {
      Path f = dir.resolve(SafetensorsWeights.SINGLE);
      groups.get(0).write(f, filler);
      files.add(f);
    } else {
      for (int i = 0; i < groups.size(); i++) {
        Path f = dir.resolve(String.format("model-%05d-of-%05d.safetensors", i + 1, groups.size()));
        groups.get(i).write(f, filler);
        files.add(f);
      }
      ObjectMapper json = new ObjectMapper();
      ObjectNode index = json.createObjectNode();
      index.putObject("metadata").put("total_size", total);
      ObjectNode map = index.putObject("weight_map");
      groupOf.forEach((name, g) -> map.put(name, files.get(g).getFileName().toString()));
      Files.writeString(dir.resolve(SafetensorsWeights.INDEX), json.writerWithDefaultPrettyPrinter().writeValueAsString(index));
    }
    return new Result(dir, config, total, files);
  }

  static String configJson(SynthShape s, DType dtype) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode c = json.createObjectNode();
    c.putArray("architectures").add(s.architecture());
    c.put("model_type", s.qkvBias() ? "qwen2" : "llama");
    c.put("hidden_size", s.hidden());
    c.put("intermediate_size", s.intermediate());
    c.put("num_hidden_layers", s.layers());
    c.put("num_attention_heads", s.heads());
    c.put("num_key_value_heads", s.kvHeads());
    c.put("hidden_act", "silu");
    c.put("max_position_embeddings", s.maxPositions());
    c.put("rms_norm_eps", s.rmsEps());
    c.put("rope_theta", s.ropeTheta());
    if (s.ropeScalingJson() != null) {
      c.set("rope_scaling", json.readTree(s.ropeScalingJson()));
    } else {
      c.putNull("rope_scaling");
    }
    c.put("tie_word_embeddings", s.tied());
    c.put("vocab_size", s.vocab());
    // the copied tokenizer's special token (the bundled models use id 0 for both)
    c.put("bos_token_id", 0);
    c.put("eos_token_id", 0);
    c.put("torch_dtype", switch (dtype) {
      case F32 -> "float32";
      case F16 -> "float16";
      case BF16 -> "bfloat16";
    });
    c.put("dsd_synthetic", "random weights of the " + s.id() + " shape, written by dsd synth");
    return json.writerWithDefaultPrettyPrinter().writeValueAsString(c);
  }

  static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** Uniform values with a per-tensor scale; the stream restarts from the name's seed at offset 0. */
  private static final class RandomFiller implements SafetensorsStreamWriter.Filler {
    private final Map<String, long[]> shapes;
    private final long seed;
    private SplittableRandom rnd;

    RandomFiller(Map<String, long[]> shapes, long seed) {
      this.shapes = shapes;
      this.seed = seed;
    }

    @Override
    public void fill(String tensor, long offset, float[] dst, int n) {
      if (offset == 0) {
        rnd = new SplittableRandom(seed ^ (tensor.hashCode() * 0x9E3779B97F4A7C15L));
      }
      long[] shape = shapes.get(tensor);
      if (tensor.endsWith("norm.weight")) {
        java.util.Arrays.fill(dst, 0, n, 1f);
        return;
      }
      // sqrt(3) x std gives a uniform of that std; std 1/sqrt(in) keeps activations of order one
      double std = tensor.endsWith(".bias") ? 0.02 : shape.length == 2 ? 1.0 / Math.sqrt(shape[1]) : 0.02;
      float a = (float) (Math.sqrt(3) * std) * 0x1p-31f;
      for (int i = 0; i < n; i++) {
        dst[i] = rnd.nextInt() * a; // uniform in [-a, a)
      }
    }
  }
}
