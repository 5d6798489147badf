package dev.dsd.p2p.pnet;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.ReferenceCountUtil;
import java.security.SecureRandom;

/**
 * Outbound half of a private-network connection: sends a fresh random 24-byte nonce as the very
 * first bytes of the connection, then xors everything written after it with XSalsa20(PSK, nonce).
 * Sits next to the head of the pipeline so that every other handler's bytes pass through it.
 */
public final class PnetWriter extends ChannelDuplexHandler {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SwarmKey key;
  private PskCipher cipher; // null until our nonce is written

  public PnetWriter(SwarmKey key) {
    this.key = key;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    // Accepted channels are active before their handlers are added, and the handlers after us
    // write as soon as they are added: the nonce has to go out now.
    if (ctx.channel().isActive()) {
      sendNonce(ctx);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    sendNonce(ctx);
    ctx.fireChannelActive();
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (!(msg instanceof ByteBuf b)) {
      ReferenceCountUtil.release(msg);
      promise.setFailure(new IllegalArgumentException("pnet encrypts only ByteBufs, got " + msg.getClass().getName()));
      return;
    }
    sendNonce(ctx);
    if (!b.isReadable()) {
      ctx.write(b, promise);
      return;
    }
    // A copy, not in place: the caller may still hold the buffer (a retained slice, a resend).
    ByteBuf out = cipher.xorCopy(b, ctx.alloc());
    b.release();
    ctx.write(out, promise);
  }

  private void sendNonce(ChannelHandlerContext ctx) {
    if (cipher != null) {
      return;
    }
    byte[] nonce = new byte[PskCipher.NONCE_LENGTH];
    RANDOM.nextBytes(nonce);
    cipher = new PskCipher(key, nonce);
    ctx.writeAndFlush(Unpooled.wrappedBuffer(nonce));
  }
}
