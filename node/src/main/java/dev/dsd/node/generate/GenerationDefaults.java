package dev.dsd.node.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The sampling defaults a model ships in its {@code generation_config.json} (Hugging Face), used
 * where a request leaves a setting unset, as vLLM does: {@code temperature}, {@code top_p} and
 * {@code repetition_penalty}. Each is null when the file does not set it; then the front end's own
 * default holds (greedy for {@code dsd generate}, OpenAI's 1.0 for the API). {@code do_sample} is
 * not read: an explicit temperature is what both front ends understand.
 */
public record GenerationDefaults(Double temperature, Double topP, Double repetitionPenalty) {
  public static final GenerationDefaults NONE = new GenerationDefaults(null, null, null);
  /** A generation_config.json is a few hundred bytes; anything huge is not one. */
  public static final long MAX_FILE_BYTES = 1 << 20;

  /** The defaults in {@code dir/generation_config.json}; {@link #NONE} when {@code dir} is null or has none. */
  public static GenerationDefaults read(Path dir) {
    if (dir == null) {
      return NONE;
    }
    Path f = dir.resolve("generation_config.json");
    if (!Files.isRegularFile(f)) {
      return NONE;
    }
    try {
      if (Files.size(f) > MAX_FILE_BYTES) {
        throw new GenerationException(f + " is " + Files.size(f) + " bytes, more than the " + MAX_FILE_BYTES
            + " a generation config may have");
      }
      JsonNode j = new ObjectMapper().readTree(f.toFile());
      if (j == null || !j.isObject()) {
        throw new GenerationException(f + " is not a JSON object");
      }
      GenerationDefaults d = new GenerationDefaults(number(j, "temperature", f), number(j, "top_p", f),
          number(j, "repetition_penalty", f));
      d.check(f);
      return d;
    } catch (IOException e) {
      throw new GenerationException("cannot read " + f + ": " + e.getMessage(), e);
    }
  }

  private void check(Path f) {
    if (temperature != null && !(temperature >= 0 && !temperature.isInfinite())) {
      throw new GenerationException(f + ": temperature must be a finite number >= 0, got " + temperature);
    }
    if (topP != null && !(topP > 0 && topP <= 1)) {
      throw new GenerationException(f + ": top_p must be in (0, 1], got " + topP);
    }
    if (repetitionPenalty != null && !(repetitionPenalty > 0 && !repetitionPenalty.isInfinite())) {
      throw new GenerationException(f + ": repetition_penalty must be a finite number > 0, got " + repetitionPenalty);
    }
  }

  private static Double number(JsonNode j, String name, Path f) {
    JsonNode v = j.get(name);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isNumber()) {
      throw new GenerationException(f + ": " + name + " must be a number, got " + v);
    }
    return v.doubleValue();
  }

  public double temperature(Double requested, double builtIn) {
    return requested != null ? requested : temperature != null ? temperature : builtIn;
  }

  public double topP(Double requested) {
    return requested != null ? requested : topP != null ? topP : 1.0;
  }

  public double repetitionPenalty(Double requested) {
    return requested != null ? requested : repetitionPenalty != null ? repetitionPenalty : 1.0;
  }
}
