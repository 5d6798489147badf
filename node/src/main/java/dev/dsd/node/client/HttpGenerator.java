package dev.dsd.node.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
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
    } else if (req.speculation() == 0) {
      body.put("dsd_spec", "off");
    } else {
      body.put("dsd_spec", req.speculation());
    }
    body.put("dsd_adaptive", req.adaptiveVerification());
    if (req.weights() != null) {
      body.put("dsd_weights", req.weights().id());
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
          if (c.hasNonNull("finish_reason")) {
            finish = c.get("finish_reason").asText();
          }
        }
        if (chunk.has("dsd")) {
          dsd = chunk.get("dsd");
        }
      }
      return result(text.toString(), finish, dsd);
    } catch (IOException e) {
      throw new GenerationException("reading the answer of " + base + " failed: " + e.getMessage(), e);
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
        d.path("bytes_sent").asLong());
  }

  @Override
  public void close() {
    // the JDK client needs no closing before Java 21
  }
}
