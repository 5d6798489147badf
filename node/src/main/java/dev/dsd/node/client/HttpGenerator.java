package dev.dsd.node.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.TokenChoice;
import dev.dsd.node.generate.TokenSink;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A client of a node's OpenAI-compatible API ({@code dsd generate --peer http://...}): a streamed
 * {@code /v1/completions} request, with dsd's own fields for the window and adaptive verification.
 */
public final class HttpGenerator implements Generator {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final URI base;
  private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  public HttpGenerator(String url) {
    try {
      this.base = URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
    } catch (IllegalArgumentException e) {
      throw new GenerationException("not a URL: " + url);
    }
  }

  @Override
  public GenerationResult generate(GenerationRequest req, TokenSink sink) {
    ObjectNode body = JSON.createObjectNode();
    body.put("prompt", req.prompt());
    body.put("max_tokens", req.maxTokens());
    body.put("temperature", req.temperature());
    body.put("top_p", req.topP());
    body.put("seed", req.seed());
    body.put("stream", true);
    body.putObject("stream_options").put("include_usage", true);
    if (req.speculation() == GenerationRequest.AUTO) {
      body.put("dsd_spec", "auto");
    } else if (req.speculation() == GenerationRequest.LEARNED) {
      body.put("dsd_spec", "learned");
    } else if (req.speculation() == 0) {
      body.put("dsd_spec", "off");
    } else {
      body.put("dsd_spec", req.speculation());
    }
    body.put("dsd_adaptive", req.adaptiveVerification());
    if (req.pipelined() != null) {
      body.put("dsd_pipelined", req.pipelined().booleanValue());
    }
    if (req.weights() != null) {
      body.put("dsd_weights", req.weights().id());
    }
    body.put("repetition_penalty", req.penalties().repetition());
    body.put("presence_penalty", req.penalties().presence());
    body.put("frequency_penalty", req.penalties().frequency());
    if (req.logprobs() != GenerationRequest.NO_LOGPROBS) {
      if (req.logprobs() > 5) {
        throw new GenerationException("/v1/completions reports at most 5 alternatives per token, asked for "
            + req.logprobs());
      }
      body.put("logprobs", req.logprobs());
    }
    req.stop().forEach(body.putArray("stop")::add);
    HttpRequest http = HttpRequest.newBuilder(base.resolve(base.getPath() + "/v1/completions"))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
    HttpResponse<java.io.InputStream> resp;
    try {
      resp = client.send(http, HttpResponse.BodyHandlers.ofInputStream());
    } catch (IOException e) {
      throw new GenerationException("cannot reach " + base + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new GenerationException("interrupted");
    }
    try (BufferedReader in = new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8))) {
      if (resp.statusCode() != 200) {
        JsonNode err = JSON.readTree(in);
        throw new GenerationException(base + " answered " + resp.statusCode() + ": "
            + err.path("error").path("message").asText(err.toString()));
      }
      StringBuilder text = new StringBuilder();
      List<TokenChoice> logprobs = new ArrayList<>();
      JsonNode dsd = null;
      String finish = "length";
      String line;
      while ((line = in.readLine()) != null) {
        if (!line.startsWith("data: ")) {
          continue;
        }
        String data = line.substring(6);
        if (data.equals("[DONE]")) {
          break;
        }
        JsonNode chunk = JSON.readTree(data);
        if (chunk.has("error")) {
          throw new GenerationException(base + ": " + chunk.path("error").path("message").asText());
        }
        for (JsonNode c : chunk.path("choices")) {
          String piece = c.path("text").asText("");
          if (!piece.isEmpty()) {
            text.append(piece);
            if (!sink.accept(piece, new int[0])) {
              return result(text.toString(), "cancelled", dsd);
            }
          }
          readLogprobs(c.path("logprobs"), logprobs);
          if (c.hasNonNull("finish_reason")) {
            finish = c.get("finish_reason").asText();
          }
        }
        if (chunk.has("dsd")) {
          dsd = chunk.get("dsd");
        }
      }
      GenerationResult r = result(text.toString(), finish, dsd);
      List<TokenChoice> withIds = new ArrayList<>();
      for (int i = 0; i < logprobs.size(); i++) {
        TokenChoice t = logprobs.get(i);
        withIds.add(i < r.tokenIds().length ? new TokenChoice(r.tokenIds()[i], t.text(), t.logprob(), t.top()) : t);
      }
      return new GenerationResult(r.text(), r.tokenIds(), r.promptTokens(), r.finishReason(), r.seconds(), r.rounds(),
          r.draftedTokens(), r.acceptedTokens(), r.route(), r.bytesSent(), withIds, r.firstTokenSeconds());
    } catch (IOException e) {
      throw new GenerationException("reading the answer of " + base + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * The legacy completions shape carries texts, not ids: the caller takes token ids from the response's
   * {@code dsd.token_ids}; alternatives get id -1.
   */
  private static void readLogprobs(JsonNode l, List<TokenChoice> out) {
    if (!l.isObject()) {
      return;
    }
    for (int i = 0; i < l.path("tokens").size(); i++) {
      List<TokenChoice.Alternative> top = new ArrayList<>();
      l.path("top_logprobs").path(i).fields().forEachRemaining(e -> top.add(new TokenChoice.Alternative(-1, e.getKey(),
          e.getValue().asDouble())));
      out.add(new TokenChoice(-1, l.path("tokens").get(i).asText(), l.path("token_logprobs").path(i).asDouble(), top));
    }
  }

  private static GenerationResult result(String text, String finish, JsonNode d) {
    if (d == null) {
      return new GenerationResult(text, new int[0], 0, finish, 0, 0, 0, 0, List.of(), 0);
    }
    int[] ids = new int[d.path("token_ids").size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = d.path("token_ids").get(i).asInt();
    }
    List<String> route = new ArrayList<>();
    d.path("route").forEach(n -> route.add(n.asText()));
    return new GenerationResult(text, ids, d.path("prompt_tokens").asInt(), finish, d.path("seconds").asDouble(),
        d.path("rounds").asInt(), d.path("drafted_tokens").asLong(), d.path("accepted_tokens").asLong(), route,
        d.path("bytes_sent").asLong(), List.of(), d.path("first_token_seconds").asDouble());
  }

  @Override
  public void close() {
    // the JDK client needs no closing before Java 21
  }
}
