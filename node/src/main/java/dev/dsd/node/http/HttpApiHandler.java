package dev.dsd.node.http;

import dev.dsd.node.metrics.NodeMetrics;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpUtil;
import java.util.ArrayDeque;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection's requests, answered one at a time in arrival order. HTTP/1.1 lets a client send
 * the next request before the answer to the last (pipelining); answering both at once would
 * interleave their bytes, so later requests wait here (at most {@link #MAX_WAITING}; beyond that the
 * connection is closed) until the {@link Exchange} of the current one ends.
 *
 * <p>One instance per connection; all its state is touched on the connection's event loop only.
 */
final class HttpApiHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
  /** Pipelined requests held per connection while one is answered. */
  static final int MAX_WAITING = 16;
  private static final Logger log = LoggerFactory.getLogger(HttpApiHandler.class);

  private final ApiRoutes routes;
  private final NodeMetrics metrics;
  private final ArrayDeque<FullHttpRequest> waiting = new ArrayDeque<>();
  private boolean busy;

  HttpApiHandler(ApiRoutes routes, NodeMetrics metrics) {
    this.routes = routes;
    this.metrics = metrics;
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
    if (!busy) {
      serve(ctx, req);
    } else if (waiting.size() < MAX_WAITING) {
      waiting.add(req.retain());
    } else {
      log.debug("{}: more than {} pipelined requests, closing", ctx.channel().remoteAddress(), MAX_WAITING);
      ctx.close();
    }
  }

  private void serve(ChannelHandlerContext ctx, FullHttpRequest req) {
    busy = true;
    // A request the decoder could not read leaves the stream at an unknown position: close after it.
    boolean keepAlive = HttpUtil.isKeepAlive(req) && req.decoderResult().isSuccess();
    routes.serve(req, new Exchange(ctx, ApiRoutes.label(req.uri()), keepAlive, metrics, () -> next(ctx)));
  }

  private void next(ChannelHandlerContext ctx) {
    busy = false;
    FullHttpRequest req = waiting.poll();
    if (req != null) {
      try {
        serve(ctx, req);
      } finally {
        req.release();
      }
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    for (FullHttpRequest r : waiting) {
      r.release();
    }
    waiting.clear();
    super.channelInactive(ctx);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // Mostly clients resetting connections; nothing to answer, the connection is done.
    log.debug("{}: {}", ctx.channel().remoteAddress(), cause.toString());
    ctx.close();
  }
}
