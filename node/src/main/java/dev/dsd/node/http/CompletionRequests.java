package dev.dsd.node.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationDefaults;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.verification.processing.TokenLogprob;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Reads OpenAI request bodies into {@link ApiRequest}s. Fields follow OpenAI's API reference; those
 * dsd does not implement are refused when they ask for something ({@code n > 1}, {@code echo})
 * and otherwise ignored, so that clients sending their defaults work. {@code presence_penalty} and
 * {@code frequency_penalty} (OpenAI's, over the generated tokens), {@code repetition_penalty}
 * (Hugging Face's, over prompt and output; vLLM takes it too) and logprobs ({@code logprobs: N} for
 * completions, {@code logprobs: true} with {@code top_logprobs: N} for chat) are applied. Where a
 * request leaves {@code temperature}, {@code top_p} or {@code repetition_penalty} unset, the model's
 * {@code generation_config.json} decides (see {@link GenerationDefaults}), else OpenAI's defaults.
 * dsd's own:
 *
 * <ul>
 *   <li>{@code dsd_spec}: {@code "off"} (or 0), a fixed window {@code K >= 1}, or {@code "auto"} (default)
 *   <li>{@code dsd_adaptive}: relax verification on unimportant tokens (lossy; default false)
 *   <li>{@code dsd_pipelined}: several rounds in flight along the pipeline (true) or one at a time
 *       (false); absent: the node's default
 *   <li>{@code dsd_tree}: token-tree speculation, {@code "off"} (or 0), N draft nodes per round, or
 *       {@code "auto"}; default {@link GenerationRequest#DEFAULT_TREE}
 *   <li>{@code dsd_weights}: route only through stages keeping their weights in this format
 *       ({@code "f32"}, {@code "f16"}, {@code "q8"}, {@code "q4"}); default: the fastest of any one format
 * </ul>
 *
 * A JSON {@code null} counts as an absent field, as in OpenAI's API.
 */
final class CompletionRequests {
  /** OpenAI's default {@code max_tokens} for {@code /v1/completions}. */
  static final int COMPLETION_DEFAULT_MAX_TOKENS = 16;
  /** Chat {@code max_tokens} when no token counter can size the rest of the context. */
  static final int CHAT_FALLBACK_MAX_TOKENS = 256;
  /** OpenAI accepts at most this many stop strings. */
  static final int MAX_STOP_STRINGS = 4;
  /** OpenAI's bound on {@code logprobs} for {@code /v1/completions}. */
  static final int MAX_COMPLETION_LOGPROBS = 5;

  private final ServedModel model;
  private final ChatTemplate template;
  private final GenerationDefaults defaults;

  CompletionRequests(ServedModel model, ChatTemplate template) {
    this.model = model;
    this.template = template;
    this.defaults = GenerationDefaults.read(model.modelDir());
  }

  ApiRequest completion(JsonNode body) {
    checkCommon(body);
    if (bool(body, "echo", false)) {
      throw ApiError.unsupported("echo", "echo is not supported");
    }
    if (intField(body, "best_of", 1) != 1) {
      throw ApiError.unsupported("best_of", "best_of must be 1: dsd returns one completion");
    }
    String prompt = prompt(body.get("prompt"));
    int maxTokens = intField(body, "max_tokens", COMPLETION_DEFAULT_MAX_TOKENS);
    JsonNode lp = field(body, "logprobs");
    // false is what some clients send for "none"; OpenAI's completions take an integer
    Integer logprobs = lp != null && lp.isBoolean() && !lp.asBoolean() ? null : optionalInt(body, "logprobs");
    if (logprobs != null && (logprobs < 0 || logprobs > MAX_COMPLETION_LOGPROBS)) {
      throw ApiError.invalid("logprobs", "logprobs must be 0.." + MAX_COMPLETION_LOGPROBS + ", got " + logprobs);
    }
    return request(body, false, prompt, maxTokens, stops(body),
        logprobs == null ? GenerationRequest.NO_LOGPROBS : logprobs);
  }

  ApiRequest chat(JsonNode body) {
    checkCommon(body);
    String prompt;
    try {
      prompt = template.render(messages(body.get("messages")));
    } catch (IllegalArgumentException e) { // the model's template refused the conversation
      throw ApiError.invalid("messages", e.getMessage());
    }
    Integer maxTokens = optionalInt(body, "max_completion_tokens");
    if (maxTokens == null) {
      maxTokens = optionalInt(body, "max_tokens");
    }
    if (maxTokens == null) {
      // OpenAI lets a chat answer run to the end of the context. A prompt that already fills it
      // gets 1, so that the generator refuses it with its own "prompt is N tokens" message.
      maxTokens = model.tokenCounter() == null ? CHAT_FALLBACK_MAX_TOKENS
          : Math.max(1, model.contextLength() - model.tokenCounter().applyAsInt(prompt));
    }
    List<String> stop = stops(body);
    stop.addAll(template.stopStrings());
    boolean logprobs = bool(body, "logprobs", false);
    Integer top = optionalInt(body, "top_logprobs");
    if (top != null && !logprobs) {
      throw ApiError.invalid("top_logprobs", "top_logprobs needs logprobs set to true");
    }
    if (top != null && (top < 0 || top > TokenLogprob.MAX_TOP)) {
      throw ApiError.invalid("top_logprobs", "top_logprobs must be 0.." + TokenLogprob.MAX_TOP + ", got " + top);
    }
    return request(body, true, prompt, maxTokens, stop,
        logprobs ? (top == null ? 0 : top) : GenerationRequest.NO_LOGPROBS);
  }

  private void checkCommon(JsonNode body) {
    if (!body.isObject()) {
      throw ApiError.invalid(null, "the request body must be a JSON object, got " + body.getNodeType());
    }
    String name = string(body, "model");
    if (name != null && !name.equals(model.id())) {
      throw new ApiError(HttpResponseStatus.NOT_FOUND, ApiError.INVALID_REQUEST, "model", "model_not_found",
          "The model " + brief(body.get("model")) + " does not exist; this node serves \"" + model.id() + "\"");
    }
    if (intField(body, "n", 1) != 1) {
      throw ApiError.unsupported("n", "n must be 1: dsd returns one choice per request");
    }
  }

  private Penalties penalties(JsonNode body) {
    Double repetition = optionalNumber(body, "repetition_penalty");
    double presence = number(body, "presence_penalty", 0);
    double frequency = number(body, "frequency_penalty", 0);
    if (repetition != null && !(repetition > 0 && !repetition.isInfinite())) {
      throw ApiError.invalid("repetition_penalty", "repetition_penalty must be a finite number > 0, got " + repetition);
    }
    for (String name : new String[] {"presence_penalty", "frequency_penalty"}) {
      double v = name.startsWith("presence") ? presence : frequency;
      if (!(Math.abs(v) <= Penalties.MAX_OPENAI_PENALTY)) {
        throw ApiError.invalid(name, name + " must be in [-2, 2], got " + v);
      }
    }
    return new Penalties(defaults.repetitionPenalty(repetition), presence, frequency);
  }

  private ApiRequest request(JsonNode body, boolean chat, String prompt, int maxTokens, List<String> stop,
      int logprobs) {
    double temperature = defaults.temperature(optionalNumber(body, "temperature"), 1);
    double topP = defaults.topP(optionalNumber(body, "top_p"));
    Penalties penalties = penalties(body);
    Long seed = optionalLong(body, "seed");
    boolean stream = bool(body, "stream", false);
    JsonNode options = field(body, "stream_options");
    if (options != null && !options.isObject()) {
      throw ApiError.invalid("stream_options", "stream_options must be an object, got " + options.getNodeType());
    }
    boolean includeUsage = stream && options != null && bool(options, "include_usage", false);
    try {
      GenerationRequest g = new GenerationRequest(prompt, maxTokens, temperature, topP,
          seed != null ? seed : ThreadLocalRandom.current().nextLong(), speculation(body),
          bool(body, "dsd_adaptive", false), stop, penalties, logprobs, weights(body),
          field(body, "dsd_pipelined") == null ? null : bool(body, "dsd_pipelined", false), tree(body));
      return new ApiRequest(chat, g, stream, includeUsage);
    } catch (GenerationException e) {
      throw ApiError.invalid(null, e.getMessage());
    }
  }

  private static String prompt(JsonNode p) {
    if (p == null || p.isNull()) {
      throw ApiError.invalid("prompt", "prompt is required");
    }
    if (p.isArray()) {
      if (p.size() != 1) {
        throw ApiError.unsupported("prompt", "prompt must be a string or an array of one string: dsd completes "
            + "one prompt per request, got " + p.size());
      }
      p = p.get(0);
    }
    if (!p.isTextual()) {
      throw ApiError.unsupported("prompt", "prompt must be text; token-id prompts are not supported");
    }
    return p.asText();
  }

  private static List<ChatMessage> messages(JsonNode ms) {
    if (ms == null || !ms.isArray() || ms.isEmpty()) {
      throw ApiError.invalid("messages", "messages must be a non-empty array of {role, content}");
    }
    List<ChatMessage> out = new ArrayList<>();
    for (int i = 0; i < ms.size(); i++) {
      JsonNode m = ms.get(i);
      String where = "messages[" + i + "]";
      if (!m.isObject() || !m.path("role").isTextual()) {
        throw ApiError.invalid("messages", where + " must be an object with a string role");
      }
      String role = m.get("role").asText();
      switch (role) {
        case "system", "developer" -> role = ChatMessage.SYSTEM;
        case ChatMessage.USER, ChatMessage.ASSISTANT -> { }
        default -> throw ApiError.unsupported("messages", where + ": role '" + role
            + "' is not supported; use system, developer, user or assistant");
      }
      out.add(new ChatMessage(role, content(m.get("content"), where)));
    }
    return out;
  }

  /** A string, or an array of parts of which only {@code {"type":"text","text":...}} is understood. */
  private static String content(JsonNode c, String where) {
    if (c == null || c.isNull()) {
      return "";
    }
    if (c.isTextual()) {
      return c.asText();
    }
    if (!c.isArray()) {
      throw ApiError.invalid("messages", where + ".content must be a string or an array of parts");
    }
    List<String> texts = new ArrayList<>();
    for (JsonNode part : c) {
      if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
        throw ApiError.unsupported("messages", where + ".content: only text parts are supported, got "
            + brief(part.path("type")));
      }
      texts.add(part.get("text").asText());
    }
    return String.join("\n", texts);
  }

  /** The request's stop strings (mutable: chat adds the template's). */
  private static List<String> stops(JsonNode body) {
    JsonNode s = field(body, "stop");
    List<String> out = new ArrayList<>();
    if (s == null) {
      return out;
    }
    if (s.isTextual()) {
      out.add(s.asText());
    } else if (s.isArray() && s.size() <= MAX_STOP_STRINGS) {
      for (JsonNode x : s) {
        if (!x.isTextual()) {
          throw ApiError.invalid("stop", "stop must hold strings, got " + x.getNodeType());
        }
        out.add(x.asText());
      }
    } else {
      throw ApiError.invalid("stop", "stop must be a string or an array of at most " + MAX_STOP_STRINGS + " strings");
    }
    if (out.contains("")) {
      throw ApiError.invalid("stop", "stop strings must not be empty");
    }
    return out;
  }

  /** {@code dsd_tree}: "off" (or 0), "auto", or N draft nodes per round; absent: the default the benchmark chose. */
  private static int tree(JsonNode body) {
    JsonNode s = field(body, "dsd_tree");
    if (s == null) {
      return GenerationRequest.DEFAULT_TREE;
    }
    if (s.isTextual() && s.asText().equals("off")) {
      return 0;
    }
    if (s.isTextual() && s.asText().equals("auto")) {
      return GenerationRequest.AUTO;
    }
    if (s.isIntegralNumber() && s.canConvertToInt() && s.intValue() >= 0 && s.intValue() <= GenerationRequest.MAX_TREE) {
      return s.intValue();
    }
    throw ApiError.invalid("dsd_tree", "dsd_tree must be \"off\", \"auto\" or N draft nodes in 1.."
        + GenerationRequest.MAX_TREE + ", got " + brief(s));
  }

  private static int speculation(JsonNode body) {
    JsonNode s = field(body, "dsd_spec");
    if (s == null) {
      return GenerationRequest.AUTO;
    }
    if (s.isTextual() && s.asText().equals("off")) {
      return 0;
    }
    if (s.isTextual() && s.asText().equals("auto")) {
      return GenerationRequest.AUTO;
    }
    if (s.isTextual() && s.asText().equals("learned")) {
      return GenerationRequest.LEARNED;
    }
    if (s.isIntegralNumber() && s.canConvertToInt() && s.intValue() >= 0) {
      return s.intValue();
    }
    throw ApiError.invalid("dsd_spec", "dsd_spec must be \"off\", \"auto\", \"learned\" or a window K >= 1, got " + brief(s));
  }

  private static WeightFormat weights(JsonNode body) {
    String w = string(body, "dsd_weights");
    try {
      return w == null ? null : WeightFormat.parse(w);
    } catch (IllegalArgumentException e) {
      throw ApiError.invalid("dsd_weights", "dsd_weights must be \"f32\", \"f16\", \"q8\" or \"q4\", got "
          + brief(body.get("dsd_weights")));
    }
  }

  /** A client's value as quoted back in an error, clipped: a body may hold megabytes. */
  private static String brief(JsonNode v) {
    String s = v.toString();
    return s.length() <= 40 ? s : s.substring(0, 40) + "...";
  }

  private static JsonNode field(JsonNode body, String name) {
    JsonNode v = body.get(name);
    return v == null || v.isNull() ? null : v;
  }

  private static String string(JsonNode body, String name) {
    JsonNode v = field(body, name);
    if (v != null && !v.isTextual()) {
      throw ApiError.invalid(name, name + " must be a string, got " + v.getNodeType());
    }
    return v == null ? null : v.asText();
  }

  private static boolean bool(JsonNode body, String name, boolean absent) {
    JsonNode v = field(body, name);
    if (v != null && !v.isBoolean()) {
      throw ApiError.invalid(name, name + " must be true or false, got " + brief(v));
    }
    return v == null ? absent : v.asBoolean();
  }

  private static double number(JsonNode body, String name, double absent) {
    JsonNode v = field(body, name);
    if (v != null && !v.isNumber()) {
      throw ApiError.invalid(name, name + " must be a number, got " + brief(v));
    }
    return v == null ? absent : v.doubleValue();
  }

  private static Double optionalNumber(JsonNode body, String name) {
    JsonNode v = field(body, name);
    return v == null ? null : number(body, name, 0);
  }

  private static int intField(JsonNode body, String name, int absent) {
    Integer v = optionalInt(body, name);
    return v == null ? absent : v;
  }

  private static Integer optionalInt(JsonNode body, String name) {
    JsonNode v = field(body, name);
    if (v != null && !(v.isIntegralNumber() && v.canConvertToInt())) {
      throw ApiError.invalid(name, name + " must be an integer, got " + brief(v));
    }
    return v == null ? null : v.intValue();
  }

  private static Long optionalLong(JsonNode body, String name) {
    JsonNode v = field(body, name);
    if (v != null && !(v.isIntegralNumber() && v.canConvertToLong())) {
      throw ApiError.invalid(name, name + " must be a 64-bit integer, got " + brief(v));
    }
    return v == null ? null : v.longValue();
  }
}
