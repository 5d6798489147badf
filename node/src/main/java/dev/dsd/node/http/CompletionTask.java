package dev.dsd.node.http;

import dev.dsd.node.entry.GenerationQueue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.metrics.NodeMetrics;
import io.netty.handler.codec.http.HttpResponseStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One completion or chat completion, run on a generation slot from the raw body to the last byte of
 * the answer. Parsing happens here too, off the event loop, since a chat prompt is tokenised to size
 * {@code max_tokens}.
 *
 * <p>The generation stops as soon as the client disconnects: the sink answers false once the
 * channel is inactive, so the slot and the model session are freed within one round. A stream's
 * head is sent with the first text rather than at once, so that a request the generator refuses
 * (prompt too long) still gets a plain 400.
 */
final class CompletionTask implements Runnable {
  private static final Logger log = LoggerFactory.getLogger(CompletionTask.class);

  private final boolean chat;
  private final byte[] body;
  private final CompletionRequests requests;
  private final Generator generator;
  private final NodeMetrics metrics;
  private final String modelId;
  private final Exchange exchange;

  CompletionTask(boolean chat, byte[] body, CompletionRequests requests, Generator generator, NodeMetrics metrics,
      String modelId, Exchange exchange) {
    this.chat = chat;
    this.body = body;
    this.requests = requests;
    this.generator = generator;
    this.metrics = metrics;
    this.modelId = modelId;
    this.exchange = exchange;
  }

  @Override
  public void run() {
    try {
      ApiRequest r = chat ? requests.chat(ApiJson.parse(body)) : requests.completion(ApiJson.parse(body));
      CompletionFormat format = CompletionFormat.of(chat, modelId,
          r.generation().logprobs() != dev.dsd.node.generate.GenerationRequest.NO_LOGPROBS);
      if (r.stream()) {
        stream(r, format);
      } else {
        whole(r, format);
      }
    } catch (ApiError e) {
      fail(e);
    } catch (GenerationException e) {
      fail(ApiError.invalid(null, e.getMessage()));
    } catch (RuntimeException e) {
      log.warn("{} failed", chat ? "chat completion" : "completion", e);
      fail(ApiError.internal(e));
    }
  }

  private void whole(ApiRequest r, CompletionFormat format) {
    GenerationResult result = generate(r, (text, ids) -> exchange.clientConnected());
    if (gone(result)) {
      exchange.abandon();
    } else {
      exchange.json(HttpResponseStatus.OK, format.response(result));
    }
  }

  private void stream(ApiRequest r, CompletionFormat format) {
    GenerationResult result = generate(r, new TokenSink() {
      @Override
      public boolean accept(String text, int[] ids) {
        return accept(text, ids, java.util.List.of());
      }

      @Override
      public boolean accept(String text, int[] ids, java.util.List<dev.dsd.node.generate.TokenChoice> logprobs) {
        if (!exchange.clientConnected()) {
          return false;
        }
        open(r, format);
        exchange.event(chunk(r, format.piece(text, logprobs)));
        return true;
      }
    });
    if (gone(result)) {
      exchange.abandon();
      return;
    }
    open(r, format);
    exchange.event(chunk(r, format.finish(result)));
    if (r.includeUsage()) {
      exchange.event(format.usageChunk(result));
    }
    exchange.endStream();
  }

  private GenerationResult generate(ApiRequest r, TokenSink sink) {
    metrics.sessionStarted();
    try {
      GenerationResult result = generator.generate(r.generation(), sink);
      metrics.record(result);
      return result;
    } finally {
      metrics.sessionEnded();
      GenerationQueue.releaseCurrent();
    }
  }

  private boolean gone(GenerationResult result) {
    return "cancelled".equals(result.finishReason()) || !exchange.clientConnected();
  }

  private void open(ApiRequest r, CompletionFormat format) {
    if (!exchange.streaming()) {
      exchange.startStream();
      ObjectNode opening = format.opening();
      if (opening != null) {
        exchange.event(chunk(r, opening));
      }
    }
  }

  /** With include_usage, OpenAI's chunks say {@code "usage": null} until the last one. */
  private static ObjectNode chunk(ApiRequest r, ObjectNode c) {
    if (r.includeUsage()) {
      c.putNull("usage");
    }
    return c;
  }

  /** A failure after the stream began can only be told in the stream, as OpenAI does: an error event. */
  private void fail(ApiError e) {
    // as after a generation: the client may send its next request the moment it reads this one
    GenerationQueue.releaseCurrent();
    if (exchange.streaming()) {
      exchange.event(e.toJson());
      exchange.endStream();
    } else {
      exchange.error(e);
    }
  }
}
