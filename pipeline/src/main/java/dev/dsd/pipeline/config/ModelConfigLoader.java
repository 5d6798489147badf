package dev.dsd.pipeline.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Reads a Hugging Face {@code config.json} into a {@link ModelConfig}, refusing what dsd cannot run.
 * Every error names the file and the field, with the value and the rule it broke.
 */
public final class ModelConfigLoader {
  /** Architectures whose tensors and math dsd implements (Qwen2 adds q/k/v biases). */
  public static final Set<String> SUPPORTED =
      Set.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");

  /** Upper bounds that catch corrupt configs before anything is allocated. */
  static final int MAX_DIM = 1 << 17;
  static final int MAX_LAYERS = 1024;
  static final int MAX_VOCAB = 1 << 22;
  static final int MAX_CONTEXT = 1 << 22;

  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelConfigLoader() {}

  public static ModelConfig load(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(file));
    } catch (IOException e) {
      throw new ModelFormatException(file + ": cannot read config: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new ModelFormatException(file + ": not a JSON object");
    }
    return parse(root, file.toString());
  }

  public static ModelConfig parse(JsonNode c, String file) {
    Reader r = new Reader(c, file);
    JsonNode archs = c.get("architectures");
    String arch = archs != null && archs.isArray() && archs.size() > 0 ? archs.get(0).asText() : null;
    if (arch == null) {
      throw new ModelFormatException(file + ": architectures is missing");
    }
    if (!SUPPORTED.contains(arch)) {
      throw new ModelFormatException(
          file + ": architectures=" + arch + " is not supported (supported: " + SUPPORTED + ")");
    }
    int hidden = r.intIn("hidden_size", 1, MAX_DIM);
    int inter = r.intIn("intermediate_size", 1, MAX_DIM * 8);
    int layers = r.intIn("num_hidden_layers", 1, MAX_LAYERS);
    int heads = r.intIn("num_attention_heads", 1, MAX_DIM);
    int kvHeads = c.hasNonNull("num_key_value_heads") ? r.intIn("num_key_value_heads", 1, MAX_DIM) : heads;
    if (heads % kvHeads != 0) {
      throw new ModelFormatException(file + ": num_key_value_heads=" + kvHeads
          + " must divide num_attention_heads=" + heads);
    }
    int headDim;
    if (c.hasNonNull("head_dim")) {
      headDim = r.intIn("head_dim", 2, MAX_DIM);
    } else {
      if (hidden % heads != 0) {
        throw new ModelFormatException(file + ": hidden_size=" + hidden
            + " must be divisible by num_attention_heads=" + heads + " when head_dim is not given");
      }
      headDim = hidden / heads;
    }
    if (headDim % 2 != 0) {
      throw new ModelFormatException(file + ": head_dim=" + headDim + " must be even for rotary embeddings");
    }
    double eps = r.doubleIn("rms_norm_eps", 1e-6, 0, 1);
    double theta = r.doubleIn("rope_theta", 10000.0, 1, 1e12);
    int vocab = r.intIn("vocab_size", 1, MAX_VOCAB);
    int maxPos = r.intIn("max_position_embeddings", 1, MAX_CONTEXT);
    boolean qwen = arch.equals("Qwen2ForCausalLM");
    boolean tie = c.has("tie_word_embeddings") ? r.bool("tie_word_embeddings") : false;
    boolean bias = qwen || (c.has("attention_bias") && r.bool("attention_bias"));
    return new ModelConfig(arch, hidden, inter, layers, heads, kvHeads, headDim, eps, theta,
        ropeScaling(c.get("rope_scaling"), file, maxPos), vocab, tie, maxPos, bias,
        c.hasNonNull("bos_token_id") ? r.intIn("bos_token_id", 0, vocab - 1) : -1,
        eosIds(c.get("eos_token_id"), file, vocab));
  }

  private static List<Integer> eosIds(JsonNode n, String file, int vocab) {
    List<Integer> ids = new ArrayList<>();
    if (n == null || n.isNull()) {
      return ids;
    }
    if (n.isArray()) {
      n.forEach(x -> ids.add(x.asInt(-1)));
    } else {
      ids.add(n.asInt(-1));
    }
    for (int id : ids) {
      if (id < 0 || id >= vocab) {
        throw new ModelFormatException(file + ": eos_token_id=" + n + " must be in [0, vocab_size=" + vocab + ")");
      }
    }
    return ids;
  }

  private static ModelConfig.RopeScaling ropeScaling(JsonNode s, String file, int maxPos) {
    if (s == null || s.isNull()) {
      return ModelConfig.RopeScaling.NONE;
    }
    String type = s.hasNonNull("rope_type") ? s.get("rope_type").asText() : s.path("type").asText("");
    Reader r = new Reader(s, file + " rope_scaling");
    switch (type) {
      case "default":
        return ModelConfig.RopeScaling.NONE;
      case "linear":
      case "dynamic":
        return new ModelConfig.RopeScaling(type, r.doubleIn("factor", Double.NaN, 1, 1e6), 1, 1, maxPos);
      case "llama3":
        return new ModelConfig.RopeScaling(type, r.doubleIn("factor", Double.NaN, 1, 1e6),
            r.doubleIn("low_freq_factor", 1.0, 0, 1e6), r.doubleIn("high_freq_factor", 4.0, 0, 1e6),
            r.intIn("original_max_position_embeddings", 1, MAX_CONTEXT));
      default:
        throw new ModelFormatException(file + ": rope_scaling type=" + type
            + " is not supported (supported: linear, dynamic, llama3)");
    }
  }

  /** Field access with range checks that name the field. */
  private record Reader(JsonNode c, String file) {
    int intIn(String field, int min, int max) {
      JsonNode n = c.get(field);
      if (n == null || n.isNull()) {
        throw new ModelFormatException(file + ": " + field + " is missing");
      }
      if (!n.canConvertToInt() || !n.isIntegralNumber()) {
        throw new ModelFormatException(file + ": " + field + "=" + n + " is not an integer");
      }
      int v = n.intValue();
      if (v < min || v > max) {
        throw new ModelFormatException(file + ": " + field + "=" + v + " is out of range [" + min + ", " + max + "]");
      }
      return v;
    }

    double doubleIn(String field, double dflt, double min, double max) {
      JsonNode n = c.get(field);
      if (n == null || n.isNull()) {
        if (Double.isNaN(dflt)) {
          throw new ModelFormatException(file + ": " + field + " is missing");
        }
        return dflt;
      }
      if (!n.isNumber()) {
        throw new ModelFormatException(file + ": " + field + "=" + n + " is not a number");
      }
      double v = n.doubleValue();
      if (!(v > min || (min == 0 && v >= 0)) || v > max) {
        throw new ModelFormatException(file + ": " + field + "=" + v + " is out of range (" + min + ", " + max + "]");
      }
      return v;
    }

    boolean bool(String field) {
      JsonNode n = c.get(field);
      if (!n.isBoolean()) {
        throw new ModelFormatException(file + ": " + field + "=" + n + " is not true/false");
      }
      return n.booleanValue();
    }
  }
}
