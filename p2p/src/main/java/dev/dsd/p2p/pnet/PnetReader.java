package dev.dsd.p2p.pnet;

import dev.dsd.p2p.core.Bytes;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.multistream.MultistreamHandler;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * Inbound half of a private-network connection: reads the remote's 24-byte nonce, then xors
 * everything after it with XSalsa20(PSK, remote nonce) before the next handler sees it.
 *
 * <p>PSK v1 has no key confirmation: with a wrong key the plaintext is noise, and multistream-select
 * may wait for a length prefix that never completes. But every libp2p connection opens with the
 * multistream header in both directions, so this handler checks the first decrypted bytes against
 * it and fails at once, with an error that says the keys differ. A remote with no key at all gives
 * itself away by sending that header in the clear where its nonce should be. A listener that waits
 * for our header before it writes (js-libp2p does) stays silent when its key differs, so then only
 * the timeout tells. {@link #result()} succeeds once the header decrypted correctly; it fails, and
 * the connection closes, on a mismatch, on the timeout, or when the remote closes first.
 */
public final class PnetReader extends ChannelInboundHandlerAdapter {
  static final byte[] MULTISTREAM_HEADER;

  static {
    byte[] text = (MultistreamHandler.HEADER + "\n").getBytes(StandardCharsets.UTF_8);
    MULTISTREAM_HEADER = Bytes.concat(Varint.encode(text.length), text);
  }

  private final SwarmKey key;
  private final Duration timeout;
  private final byte[] nonce = new byte[PskCipher.NONCE_LENGTH];
  private final Promise<Void> promise = ImmediateEventExecutor.INSTANCE.newPromise();
  private int nonceRead;
  private PskCipher cipher; // null until the remote's nonce is in
  private int confirmed; // bytes of MULTISTREAM_HEADER decrypted and matched
  private ScheduledFuture<?> timer;

  /** @param timeout for the remote's nonce and its first multistream message: one round trip */
  public PnetReader(SwarmKey key, Duration timeout) {
    this.key = key;
    this.timeout = timeout;
  }

  /** Succeeds once the remote is known to hold the same swarm key. */
  public Promise<Void> result() {
    return promise;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    timer = ctx.executor().schedule(() -> fail(ctx, new PrivateNetworkException("private-network handshake with "
        + ctx.channel().remoteAddress() + " did not finish within " + timeout.toMillis() + " ms (" + progress() + ")"
        + (cipher != null ? ": the remote likely has a different swarm key" : ""))),
        timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf b)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (promise.isDone() && !promise.isSuccess()) {
      b.release(); // failed and closing: nothing more reaches the handlers after us
      return;
    }
    if (cipher == null) {
      int before = nonceRead;
      int n = Math.min(nonce.length - nonceRead, b.readableBytes());
      b.readBytes(nonce, nonceRead, n);
      nonceRead += n;
      int h = MULTISTREAM_HEADER.length;
      if (before < h && nonceRead >= h && Arrays.equals(nonce, 0, h, MULTISTREAM_HEADER, 0, h)) {
        b.release();
        fail(ctx, new PrivateNetworkException(ctx.channel().remoteAddress()
            + " is not in a private network: it sent multistream-select in the clear instead of a nonce"
            + " (this host requires swarm key " + key.fingerprint() + ")"));
        return;
      }
      if (nonceRead < nonce.length) {
        b.release();
        return;
      }
      cipher = new PskCipher(key, nonce);
    }
    if (!b.isReadable()) {
      b.release();
      return;
    }
    cipher.xorInPlace(b, b.readerIndex(), b.readableBytes());
    if (confirmed < MULTISTREAM_HEADER.length && !confirm(b)) {
      b.release();
      fail(ctx, new PrivateNetworkException(ctx.channel().remoteAddress()
          + " uses a different swarm key: its first bytes do not decrypt to multistream-select"
          + " (this host's key " + key.fingerprint() + ")"));
      return;
    }
    ctx.fireChannelRead(b);
  }

  private boolean confirm(ByteBuf b) {
    int n = Math.min(MULTISTREAM_HEADER.length - confirmed, b.readableBytes());
    for (int i = 0; i < n; i++) {
      if (b.getByte(b.readerIndex() + i) != MULTISTREAM_HEADER[confirmed + i]) {
        return false;
      }
    }
    confirmed += n;
    if (confirmed == MULTISTREAM_HEADER.length) {
      timer.cancel(false);
      promise.trySuccess(null);
    }
    return true;
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    fail(ctx, new PrivateNetworkException(ctx.channel().remoteAddress()
        + " closed the connection during the private-network handshake (" + progress()
        + "): it likely has a different swarm key or none"));
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (promise.isDone()) {
      ctx.fireExceptionCaught(cause);
    } else {
      // Typically a reset: a peer outside the network hangs up on our nonce.
      fail(ctx, new PrivateNetworkException("connection with " + ctx.channel().remoteAddress()
          + " failed during the private-network handshake (" + progress() + "): " + cause.getMessage()
          + "; it likely has a different swarm key or none", cause));
    }
  }

  private String progress() {
    return nonceRead + " of " + nonce.length + " nonce bytes, " + confirmed + " of " + MULTISTREAM_HEADER.length
        + " header bytes";
  }

  private void fail(ChannelHandlerContext ctx, Throwable cause) {
    if (promise.tryFailure(cause)) {
      if (timer != null) {
        timer.cancel(false);
      }
      ctx.close();
    }
  }
}
