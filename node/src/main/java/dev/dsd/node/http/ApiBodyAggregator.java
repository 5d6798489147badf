package dev.dsd.node.http;

import dev.dsd.node.metrics.NodeMetrics;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;

/**
 * Netty's {@link HttpObjectAggregator} with the body limit answered as an OpenAI error (413 with a
 * JSON body) instead of an empty 413. Netty's handling is otherwise kept: when the rest of the body
 * can still be read on a keep-alive connection it is discarded and the connection stays usable;
 * when it cannot (already aggregated, auto-read off, or no keep-alive) the connection is closed.
 * A body announced too large with {@code Expect: 100-continue} is refused before it is sent.
 */
final class ApiBodyAggregator extends HttpObjectAggregator {
  private final int maxBytes;
  private final NodeMetrics metrics;

  ApiBodyAggregator(int maxBytes, NodeMetrics metrics) {
    super(maxBytes);
    this.maxBytes = maxBytes;
    this.metrics = metrics;
  }

  @Override
  protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) throws Exception {
    if (!(oversized instanceof HttpRequest request)) {
      super.handleOversizedMessage(ctx, oversized);
      return;
    }
    boolean close = oversized instanceof FullHttpMessage || !ctx.channel().config().isAutoRead()
        || !HttpUtil.is100ContinueExpected(oversized) && !HttpUtil.isKeepAlive(oversized);
    metrics.recordRequest(ApiRoutes.label(request.uri()), HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE.code());
    ctx.writeAndFlush(tooLarge(!close))
        .addListener(close ? ChannelFutureListener.CLOSE : ChannelFutureListener.CLOSE_ON_FAILURE);
  }

  @Override
  protected Object newContinueResponse(HttpMessage start, int maxContentLength, ChannelPipeline pipeline) {
    Object netty = super.newContinueResponse(start, maxContentLength, pipeline);
    if (netty instanceof HttpResponse r && r.status().equals(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE)) {
      ReferenceCountUtil.release(netty);
      if (start instanceof HttpRequest request) {
        metrics.recordRequest(ApiRoutes.label(request.uri()), HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE.code());
      }
      return tooLarge(true);
    }
    return netty;
  }

  private FullHttpResponse tooLarge(boolean keepAlive) {
    ApiError e = new ApiError(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, ApiError.INVALID_REQUEST, null,
        "request_too_large", "the request body exceeds this node's limit of " + maxBytes + " bytes");
    byte[] body = ApiJson.bytes(e.toJson());
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE,
        Unpooled.wrappedBuffer(body));
    r.headers().set(HttpHeaderNames.CONTENT_TYPE, Exchange.JSON_TYPE);
    HttpUtil.setContentLength(r, body.length);
    HttpUtil.setKeepAlive(r, keepAlive);
    return r;
  }
}
