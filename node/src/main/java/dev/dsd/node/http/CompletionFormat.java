package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenChoice;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;

/**
 * Shapes the answers of one request as OpenAI does for its endpoint: the whole response, and for
 * streaming the chunks. All of a request's objects share one {@code id} and {@code created}.
 *
 * <p>Besides OpenAI's fields, the response and the last streamed chunk carry a {@code dsd} object:
 * {@code tokens_per_second}, {@code rounds}, {@code acceptance_rate}, {@code route} and the raw
 * counts behind them.
 */
abstract class CompletionFormat {
  static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private final String id;
  private final long created;
  private final String model;
  /** Whether the request asked for logprobs: then choices carry them, else {@code "logprobs": null}. */
  final boolean logprobs;

  CompletionFormat(String idPrefix, String model, boolean logprobs) {
    this.id = idPrefix + UUID.randomUUID().toString().replace("-", "");
    this.created = System.currentTimeMillis() / 1000;
    this.model = model;
    this.logprobs = logprobs;
  }

  static CompletionFormat of(boolean chat, String model) {
    return of(chat, model, false);
  }

  static CompletionFormat of(boolean chat, String model, boolean logprobs) {
    return chat ? new ChatCompletionFormat(model, logprobs) : new TextCompletionFormat(model, logprobs);
  }

  /** The non-streaming response. */
  abstract ObjectNode response(GenerationResult r);

  /** The chunk that opens a stream, or null when the endpoint has none. */
  abstract ObjectNode opening();

  /** A chunk carrying generated text. */
  final ObjectNode piece(String text) {
    return piece(text, List.of());
  }

  /** A chunk carrying generated text and the logprobs of the tokens produced since the last chunk. */
  abstract ObjectNode piece(String text, List<TokenChoice> logprobs);

  /** The chunk that ends the choice with its {@code finish_reason}. */
  abstract ObjectNode finish(GenerationResult r);

  /** The chunk after the last choice chunk when {@code stream_options.include_usage}: no choices, only usage. */
  final ObjectNode usageChunk(GenerationResult r) {
    ObjectNode c = envelope(chunkObject());
    c.putArray("choices");
    c.set("usage", usage(r));
    return c;
  }

  abstract String chunkObject();

  final String id() {
    return id;
  }

  final ObjectNode envelope(String object) {
    ObjectNode o = JSON.objectNode();
    o.put("id", id);
    o.put("object", object);
    o.put("created", created);
    o.put("model", model);
    return o;
  }

  static ObjectNode usage(GenerationResult r) {
    ObjectNode u = JSON.objectNode();
    u.put("prompt_tokens", r.promptTokens());
    u.put("completion_tokens", r.tokenIds().length);
    u.put("total_tokens", r.promptTokens() + r.tokenIds().length);
    return u;
  }

  /** A token's UTF-8 bytes as OpenAI lists them (its text may be part of a character). */
  static ArrayNode bytes(String text) {
    ArrayNode a = JSON.arrayNode();
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      a.add(b & 0xff);
    }
    return a;
  }

  static ObjectNode dsd(GenerationResult r) {
    ObjectNode d = JSON.objectNode();
    d.put("tokens_per_second", r.tokensPerSecond());
    d.put("rounds", r.rounds());
    d.put("acceptance_rate", r.acceptanceRate());
    d.put("drafted_tokens", r.draftedTokens());
    d.put("accepted_tokens", r.acceptedTokens());
    d.put("seconds", r.seconds());
    d.put("first_token_seconds", r.firstTokenSeconds());
    d.put("bytes_sent", r.bytesSent());
    r.route().forEach(d.putArray("route")::add);
    var ids = d.putArray("token_ids");
    for (int id : r.tokenIds()) {
      ids.add(id);
    }
    d.put("prompt_tokens", r.promptTokens());
    return d;
  }
}
