package dev.dsd.node.http;

import dev.dsd.node.entry.GenerationQueue;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.metrics.NodeMetrics;
import io.netty.buffer.ByteBufUtil;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The API's routes, shared by all connections:
 *
 * <pre>
 * GET  /health               {"status":"ok","model":...,"active_sessions":n}
 * GET  /metrics              Prometheus text format
 * GET  /v1/models            the served model, as OpenAI lists models
 * GET  /v1/models/{id}
 * POST /v1/completions       see {@link CompletionRequests}
 * POST /v1/chat/completions
 * </pre>
 *
 * Anything else is 404 (unknown path) or 405 (known path, other method). Only routing happens on
 * the event loop; completions go to a {@link GenerationQueue} slot (waiting their turn) or get 503 when its queue is full.
 */
final class ApiRoutes {
  static final String HEALTH = "/health";
  static final String METRICS = "/metrics";
  static final String MODELS = "/v1/models";
  static final String COMPLETIONS = "/v1/completions";
  static final String CHAT = "/v1/chat/completions";
  /** Metrics label of every path that is not a route, so that clients cannot create time series. */
  static final String OTHER = "other";
  /** Seconds a client is asked to wait after 503. */
  private static final Set<String> ROUTES = Set.of(HEALTH, METRICS, MODELS, COMPLETIONS, CHAT);
  private static final Logger log = LoggerFactory.getLogger(ApiRoutes.class);

  private final Generator generator;
  private final ServedModel model;
  private final NodeMetrics metrics;
  private final GenerationQueue slots;
  private final CompletionRequests requests;
  private final long created = System.currentTimeMillis() / 1000;

  ApiRoutes(Generator generator, ServedModel model, ChatTemplate template, NodeMetrics metrics, GenerationQueue slots) {
    this.generator = generator;
    this.model = model;
    this.metrics = metrics;
    this.slots = slots;
    this.requests = new CompletionRequests(model, template);
  }

  /** The metrics label of a request URI: its route, or {@link #OTHER}. */
  static String label(String uri) {
    String path = new QueryStringDecoder(uri).rawPath();
    return ROUTES.contains(path) ? path : path.startsWith(MODELS + "/") ? MODELS + "/{id}" : OTHER;
  }

  /** Answers {@code req} through {@code ex}; never throws. {@code req} is not kept after the call. */
  void serve(FullHttpRequest req, Exchange ex) {
    try {
      route(req, ex);
    } catch (ApiError e) {
      ex.error(e);
    } catch (RuntimeException e) {
      log.warn("{} {} failed", req.method(), label(req.uri()), e);
      ex.error(ApiError.internal(e));
    }
  }

  private void route(FullHttpRequest req, Exchange ex) {
    if (req.decoderResult().isFailure()) {
      throw ApiError.invalid(null, "malformed HTTP request: " + req.decoderResult().cause().getMessage());
    }
    String path = path(req.uri());
    HttpMethod method = req.method();
    switch (path) {
      case HEALTH -> {
        allow(method, HttpMethod.GET, path);
        ObjectNode h = JsonNodeFactory.instance.objectNode().put("status", "ok").put("model", model.id())
            .put("active_sessions", metrics.activeSessions()).put("max_sessions", slots.capacity());
        ex.json(HttpResponseStatus.OK, h);
      }
      case METRICS -> {
        allow(method, HttpMethod.GET, path);
        ex.respond(HttpResponseStatus.OK, NodeMetrics.CONTENT_TYPE, metrics.render().getBytes(StandardCharsets.UTF_8),
            HttpHeaders.EMPTY_HEADERS);
      }
      case MODELS -> {
        allow(method, HttpMethod.GET, path);
        ObjectNode list = JsonNodeFactory.instance.objectNode().put("object", "list");
        list.putArray("data").add(modelObject());
        ex.json(HttpResponseStatus.OK, list);
      }
      case COMPLETIONS, CHAT -> {
        allow(method, HttpMethod.POST, path);
        byte[] body = ByteBufUtil.getBytes(req.content());
        CompletionTask task = new CompletionTask(path.equals(CHAT), body, requests, generator, metrics, model.id(), ex);
        if (!slots.trySubmit(task)) {
          throw new ApiError(HttpResponseStatus.SERVICE_UNAVAILABLE, ApiError.SERVER_ERROR, null, "server_busy",
              "all " + slots.capacity() + " generation slots of this node are busy and " + slots.maxWaiting()
                  + " requests wait; retry shortly")
              .withHeader(HttpHeaderNames.RETRY_AFTER, slots.retryAfterSeconds());
        }
      }
      default -> {
        if (!path.startsWith(MODELS + "/")) {
          throw new ApiError(HttpResponseStatus.NOT_FOUND, ApiError.INVALID_REQUEST, null, "unknown_url",
              "Invalid URL (" + method + " " + clip(path) + ")");
        }
        allow(method, HttpMethod.GET, path);
        String id = path.substring(MODELS.length() + 1);
        if (!id.equals(model.id())) {
          throw new ApiError(HttpResponseStatus.NOT_FOUND, ApiError.INVALID_REQUEST, "model", "model_not_found",
              "The model \"" + clip(id) + "\" does not exist; this node serves \"" + model.id() + "\"");
        }
        ex.json(HttpResponseStatus.OK, modelObject());
      }
    }
  }

  private ObjectNode modelObject() {
    return JsonNodeFactory.instance.objectNode().put("id", model.id()).put("object", "model").put("created", created)
        .put("owned_by", "dsd").put("context_length", model.contextLength());
  }

  private static void allow(HttpMethod method, HttpMethod allowed, String path) {
    if (!method.equals(allowed)) {
      throw new ApiError(HttpResponseStatus.METHOD_NOT_ALLOWED, ApiError.INVALID_REQUEST, null, "method_not_allowed",
          "Method " + method + " is not allowed on " + path + "; use " + allowed)
          .withHeader(HttpHeaderNames.ALLOW, allowed);
    }
  }

  private static String path(String uri) {
    try {
      return new QueryStringDecoder(uri).path();
    } catch (IllegalArgumentException e) {
      throw ApiError.invalid(null, "malformed request URI: " + e.getMessage());
    }
  }

  private static String clip(String s) {
    return s.length() <= 80 ? s : s.substring(0, 80) + "...";
  }
}
