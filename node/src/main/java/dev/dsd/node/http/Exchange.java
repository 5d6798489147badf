package dev.dsd.node.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.node.metrics.NodeMetrics;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The answer to one request, written from the event loop or a generation thread (Netty queues
 * writes from other threads in order). Either one whole response, or a stream of server-sent events:
 *
 * <pre>
 * HTTP/1.1 200 OK
 * content-type: text/event-stream        (chunked)
 *
 * data: {...}\n\n
 * data: {...}\n\n
 * data: [DONE]\n\n
 * </pre>
 *
 * Ending it, by a response, the end of the stream or {@link #abandon()}, records the request in the
 * metrics and hands the connection to its next pipelined request, exactly once.
 */
final class Exchange {
  /** Status recorded for a request whose client left before its answer (nginx's convention). */
  static final int CLIENT_CLOSED = 499;
  static final String JSON_TYPE = "application/json";

  private final ChannelHandlerContext ctx;
  private final String route;
  private final boolean keepAlive;
  private final NodeMetrics metrics;
  private final Runnable onEnd;
  private final AtomicBoolean ended = new AtomicBoolean();
  private volatile boolean streaming;

  Exchange(ChannelHandlerContext ctx, String route, boolean keepAlive, NodeMetrics metrics, Runnable onEnd) {
    this.ctx = ctx;
    this.route = route;
    this.keepAlive = keepAlive;
    this.metrics = metrics;
    this.onEnd = onEnd;
  }

  boolean clientConnected() {
    return ctx.channel().isActive();
  }

  boolean streaming() {
    return streaming;
  }

  void json(HttpResponseStatus status, JsonNode body) {
    respond(status, JSON_TYPE, ApiJson.bytes(body), HttpHeaders.EMPTY_HEADERS);
  }

  void error(ApiError e) {
    respond(e.status(), JSON_TYPE, ApiJson.bytes(e.toJson()), e.headers());
  }

  void respond(HttpResponseStatus status, String contentType, byte[] body, HttpHeaders extra) {
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(body));
    r.headers().set(extra);
    r.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
    HttpUtil.setContentLength(r, body.length);
    HttpUtil.setKeepAlive(r, keepAlive);
    var written = ctx.writeAndFlush(r);
    if (!keepAlive) {
      written.addListener(ChannelFutureListener.CLOSE);
    }
    end(status.code());
  }

  /** Sends the head of an event stream; {@link #event} and {@link #endStream} follow. */
  void startStream() {
    HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    head.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
    head.headers().set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_CACHE);
    HttpUtil.setTransferEncodingChunked(head, true);
    HttpUtil.setKeepAlive(head, keepAlive);
    streaming = true;
    ctx.writeAndFlush(head);
  }

  void event(JsonNode data) {
    send("data: " + new String(ApiJson.bytes(data), StandardCharsets.UTF_8) + "\n\n");
  }

  /** Sends {@code data: [DONE]} and ends the stream. */
  void endStream() {
    send("data: [DONE]\n\n");
    var written = ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
    if (!keepAlive) {
      written.addListener(ChannelFutureListener.CLOSE);
    }
    end(HttpResponseStatus.OK.code());
  }

  /** The client is gone: nothing more is written. */
  void abandon() {
    end(streaming ? HttpResponseStatus.OK.code() : CLIENT_CLOSED);
  }

  private void send(String text) {
    ctx.writeAndFlush(new DefaultHttpContent(Unpooled.copiedBuffer(text, StandardCharsets.UTF_8)));
  }

  private void end(int status) {
    if (ended.compareAndSet(false, true)) {
      metrics.recordRequest(route, status);
      try {
        // After the writes above: they were queued on the event loop first.
        ctx.executor().execute(onEnd);
      } catch (RejectedExecutionException e) {
        // the server is shutting down; there is no next request to serve
      }
    }
  }
}
