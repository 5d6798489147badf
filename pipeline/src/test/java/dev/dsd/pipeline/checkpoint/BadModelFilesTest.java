package dev.dsd.pipeline.checkpoint;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.safetensors.SafetensorsWriter;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each way a model directory can be wrong gives a clear error naming the file and field or tensor. */
class BadModelFilesTest {
  @TempDir Path tmp;

  private Path model() throws IOException {
    return TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).writeTo(tmp.resolve("m"));
  }

  private void expect(Path dir, String... fragments) {
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> Checkpoint.open(dir).close());
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' lacks '" + f + "'");
    }
  }

  private Path editConfig(Consumer<ObjectNode> edit) throws IOException {
    Path dir = model();
    ObjectMapper json = new ObjectMapper();
    ObjectNode c = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
    edit.accept(c);
    json.writeValue(dir.resolve("config.json").toFile(), c);
    return dir;
  }

  @Test
  void unsupportedArchitecture() throws IOException {
    expect(editConfig(c -> c.putArray("architectures").add("GPT2LMHeadModel")), "config.json", "GPT2LMHeadModel",
        "not supported");
  }

  @Test
  void configFieldsOutOfRange() throws IOException {
    expect(editConfig(c -> c.put("num_key_value_heads", 3)), "config.json", "num_key_value_heads=3",
        "num_attention_heads=4");
    Files.walk(tmp).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    expect(editConfig(c -> c.put("hidden_size", -5)), "config.json", "hidden_size");
    Files.walk(tmp).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    expect(editConfig(c -> c.remove("vocab_size")), "config.json", "vocab_size is missing");
    Files.walk(tmp).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    expect(editConfig(c -> c.putObject("rope_scaling").put("type", "yarn").put("factor", 2)), "rope_scaling", "yarn");
  }

  @Test
  void truncatedWeights() throws IOException {
    Path dir = model();
    Path st = dir.resolve("model.safetensors");
    try (FileChannel ch = FileChannel.open(st, StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() - 100);
    }
    expect(dir, "model.safetensors", "truncated");
  }

  @Test
  void headerLongerThanTheFile() throws IOException {
    Path dir = model();
    Path st = dir.resolve("model.safetensors");
    try (FileChannel ch = FileChannel.open(st, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40), 0);
    }
    expect(dir, "model.safetensors", "header length");
  }

  @Test
  void garbageHeader() throws IOException {
    Path dir = model();
    byte[] junk = "{\"a\": [1, 2".getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + junk.length).order(ByteOrder.LITTLE_ENDIAN).putLong(junk.length).put(junk);
    Files.write(dir.resolve("model.safetensors"), b.array());
    expect(dir, "model.safetensors", "JSON");
  }

  @Test
  void missingTensor() throws IOException {
    Path dir = model();
    SafetensorsWriter w = new SafetensorsWriter(DType.F32).add("model.embed_tokens.weight", new float[300 * 32], 300, 32);
    w.write(dir.resolve("model.safetensors"));
    expect(dir, "model.layers.0.", "missing");
  }

  @Test
  void wrongShape() throws IOException {
    Path dir = editConfig(c -> c.put("intermediate_size", 96)); // weights were written for 64
    expect(dir, "model.safetensors", "mlp.gate_proj.weight", "[64, 32]", "[96, 32]");
  }

  @Test
  void tokenizerLargerThanTheModelVocabulary() throws IOException {
    Path dir = editConfig(c -> c.put("vocab_size", 100)); // tokenizer has 277 entries
    // weights no longer match either; shapes are checked first, so rewrite a consistent small model
    Files.walk(tmp).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    dir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(2).vocab(260).writeTo(tmp.resolve("v"));
    TinyCheckpoint.writeTokenizer(dir.resolve("tokenizer.json"), 277);
    expect(dir, "tokenizer.json", "277", "vocab_size=260");
  }

  @Test
  void missingFiles() throws IOException {
    Path dir = model();
    Files.delete(dir.resolve("model.safetensors"));
    expect(dir, "model.safetensors", "model.safetensors.index.json");
    expect(tmp.resolve("nowhere"), "does not exist");
  }

  @Test
  void shardOnlyNeedsItsOwnLayers() throws IOException {
    Path dir = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).writeTo(tmp.resolve("s"));
    // Rewrite the file with only layers 2..3 and no embedding/head: a middle shard [2, 4) minus the head.
    try (var full = dev.dsd.pipeline.safetensors.SafetensorsWeights.open(dir)) {
      SafetensorsWriter w = new SafetensorsWriter(DType.F32);
      for (String n : full.names()) {
        if (n.startsWith("model.layers.2.") || n.startsWith("model.layers.3.") || n.equals("model.norm.weight")
            || n.equals("lm_head.weight")) {
          w.add(n, full.tensor(n), full.shape(n));
        }
      }
      Path only = tmp.resolve("only");
      Files.createDirectories(only);
      w.write(only.resolve("model.safetensors"));
      Files.copy(dir.resolve("config.json"), only.resolve("config.json"));
      Files.copy(dir.resolve("tokenizer.json"), only.resolve("tokenizer.json"));
      Checkpoint.open(only, 2, 4).close();
      ModelFormatException e = assertThrows(ModelFormatException.class, () -> Checkpoint.open(only, 0, 4).close());
      assertTrue(e.getMessage().contains("model.embed_tokens.weight"), e.getMessage());
    }
  }
}
