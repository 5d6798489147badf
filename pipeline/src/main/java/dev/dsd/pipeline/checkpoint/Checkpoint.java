package dev.dsd.pipeline.checkpoint;

import dev.dsd.pipeline.config.ModelConfigLoader;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.safetensors.SafetensorsWeights;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;

/**
 * A model directory in Hugging Face layout: {@code config.json}, safetensors weights and
 * {@code tokenizer.json}. Opening validates the config, every weight file's header and the tokenizer;
 * on any failure everything already opened is closed again (nothing half-loaded).
 */
public final class Checkpoint implements AutoCloseable {
  private final Path dir;
  private final ModelConfig config;
  private final SafetensorsWeights weights;
  private final Tokenizer tokenizer;
  private volatile String modelId;

  private Checkpoint(Path dir, ModelConfig config, SafetensorsWeights weights, Tokenizer tokenizer) {
    this.dir = dir;
    this.config = config;
    this.weights = weights;
    this.tokenizer = tokenizer;
  }

  /** Opens a model directory and checks that the tensors of layers {@code [0, L)} are all present. */
  public static Checkpoint open(Path dir) {
    return open(dir, 0, -1);
  }

  /**
   * Opens a model directory for a shard {@code [from, to)} ({@code to = -1} for the last layer) and
   * checks that every tensor that shard needs exists with the expected shape. Other layers' weights
   * are neither checked nor read.
   */
  public static Checkpoint open(Path dir, int from, int to) {
    if (!Files.isDirectory(dir)) {
      throw new ModelFormatException(dir + ": model directory does not exist");
    }
    ModelConfig config = ModelConfigLoader.load(dir.resolve("config.json"));
    int end = to < 0 ? config.numLayers() : to;
    if (from < 0 || from >= end || end > config.numLayers()) {
      throw new ModelFormatException(dir + ": layer range [" + from + ", " + end + ") is not inside [0, "
          + config.numLayers() + ")");
    }
    SafetensorsWeights weights = SafetensorsWeights.open(dir);
    Tokenizer tokenizer = null;
    try {
      validate(config, weights, from, end);
      tokenizer = Tokenizer.load(dir.resolve("tokenizer.json"));
      if (tokenizer.vocabSize() > config.vocabSize()) {
        throw new ModelFormatException(dir.resolve("tokenizer.json") + ": vocabulary of " + tokenizer.vocabSize()
            + " tokens does not fit the model's vocab_size=" + config.vocabSize() + " (config.json)");
      }
      return new Checkpoint(dir, config, weights, tokenizer);
    } catch (RuntimeException e) {
      weights.close();
      if (tokenizer != null) {
        tokenizer.close();
      }
      throw e;
    }
  }

  static void validate(ModelConfig config, SafetensorsWeights weights, int from, int to) {
    for (Map.Entry<String, long[]> e : TensorNames.forShard(config, from, to).entrySet()) {
      if (!weights.has(e.getKey())) {
        throw new ModelFormatException("tensor " + e.getKey() + " is missing from the checkpoint (needed by layers ["
            + from + ", " + to + "))");
      }
      long[] actual = weights.shape(e.getKey());
      if (!Arrays.equals(actual, e.getValue())) {
        throw new ModelFormatException(weights.fileOf(e.getKey()) + ": tensor " + e.getKey() + " has shape "
            + Arrays.toString(actual) + " but config.json implies " + Arrays.toString(e.getValue()));
      }
    }
  }

  public Path dir() {
    return dir;
  }

  public ModelConfig config() {
    return config;
  }

  public SafetensorsWeights weights() {
    return weights;
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /**
   * The model's identity: SHA-256 over config.json and the weight files, so peers that serve
   * different weights under one name never mix. Computed once (it reads every byte) and kept here and,
   * for big checkpoints, in {@link ModelIdMemo} so a restart does not read them again.
   */
  public String modelId() {
    String id = modelId;
    if (id == null) {
      synchronized (this) {
        if (modelId == null) {
          java.util.List<Path> files = new java.util.ArrayList<>();
          files.add(dir.resolve("config.json"));
          files.addAll(weights.paths());
          modelId = ModelIdMemo.standard().get(files, this::hash);
        }
        id = modelId;
      }
    }
    return id;
  }

  private String hash() {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(Files.readAllBytes(dir.resolve("config.json")));
      byte[] buf = new byte[1 << 20];
      for (Path p : weights.paths()) {
        try (InputStream in = Files.newInputStream(p)) {
          int r;
          while ((r = in.read(buf)) > 0) {
            md.update(buf, 0, r);
          }
        }
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (IOException | NoSuchAlgorithmException e) {
      throw new ModelFormatException(dir + ": cannot hash model files: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    weights.close();
    tokenizer.close();
  }
}
