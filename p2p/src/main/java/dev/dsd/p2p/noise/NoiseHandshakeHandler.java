package dev.dsd.p2p.noise;

import dev.dsd.p2p.core.Bytes;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.noise.proto.NoiseProto.NoiseExtensions;
import dev.dsd.p2p.noise.proto.NoiseProto.NoiseHandshakePayload;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the libp2p Noise handshake (protocol id {@code /noise}) on a freshly negotiated connection,
 * then replaces itself with a {@link NoiseTransportCodec}.
 *
 * <pre>
 *   each handshake message: | length: u16 big-endian | noise message |
 *   payloads (protobuf NoiseHandshakePayload): responder's in message 2, initiator's in message 3;
 *   identity_sig = Ed25519-sign(identity key, "noise-libp2p-static-key:" || static X25519 key)
 * </pre>
 *
 * Completes {@link #result()} with the remote peer id once the remote's signature over its static
 * key verifies and, when the dialer expected a peer id, that id matches. Any failure, including the
 * {@link #HANDSHAKE_TIMEOUT}, fails the promise and closes the connection.
 */
public final class NoiseHandshakeHandler extends ByteToMessageDecoder {
  public static final String PROTOCOL_ID = "/noise";
  public static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
  static final byte[] SIG_PREFIX = "noise-libp2p-static-key:".getBytes(StandardCharsets.US_ASCII);
  /** A handshake message with payload is far below this (keys, signature, a few muxer names). */
  static final int MAX_HANDSHAKE_MESSAGE = 8192;

  /** What a successful handshake established. */
  public record Result(PeerId remotePeer, byte[] remotePublicKey, List<String> remoteMuxers) {}

  private final Identity identity;
  private final NoiseXX noise;
  private final PeerId expected;
  private final List<String> muxers;
  // Created up front: a stream's handlers are added before the stream is registered, and callers
  // attach listeners right away. Completed on the event loop, so listeners run there.
  private final Promise<Result> promise = ImmediateEventExecutor.INSTANCE.newPromise();
  private ScheduledFuture<?> timeout;
  private Result remote;

  /**
   * @param expected the peer the dialer meant to reach, or null (listener side, or unknown)
   * @param muxers stream muxers to advertise in the payload extensions (may be empty)
   */
  public NoiseHandshakeHandler(Identity identity, boolean initiator, PeerId expected, List<String> muxers) {
    this.identity = identity;
    byte[][] st = NoiseXX.newStaticKey();
    this.noise = new NoiseXX(initiator, st[0], st[1]);
    this.expected = expected;
    this.muxers = List.copyOf(muxers);
  }

  public Promise<Result> result() {
    return promise;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    timeout = ctx.executor().schedule(() -> fail(ctx, new ProtocolViolationException(
        "noise handshake did not finish within " + HANDSHAKE_TIMEOUT.toSeconds() + " s")),
        HANDSHAKE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    if (ctx.channel().isActive() && noise.isInitiator()) {
      send(ctx, noise.writeMessage(new byte[0]));
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) throws Exception {
    if (noise.isInitiator() && !noise.isComplete() && noise.myTurn()) {
      send(ctx, noise.writeMessage(new byte[0]));
    }
    super.channelActive(ctx);
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    while (!noise.isComplete() && in.readableBytes() >= 2) {
      int len = in.getUnsignedShort(in.readerIndex());
      if (len > MAX_HANDSHAKE_MESSAGE) {
        throw new ProtocolViolationException("noise handshake message of " + len + " bytes exceeds "
            + MAX_HANDSHAKE_MESSAGE);
      }
      if (in.readableBytes() < 2 + len) {
        return;
      }
      in.skipBytes(2);
      byte[] msg = ByteBufUtil.getBytes(in, in.readerIndex(), len);
      in.skipBytes(len);
      byte[] payload = noise.readMessage(msg);
      if (noise.isInitiator()) {
        // message 2: the responder's identity; answer with message 3 carrying ours
        remote = verify(payload);
        send(ctx, noise.writeMessage(ourPayload()));
      } else if (!noise.isComplete()) {
        send(ctx, noise.writeMessage(ourPayload())); // message 1 read; message 2 with our identity
      } else {
        remote = verify(payload);
      }
    }
    if (noise.isComplete() && !promise.isDone()) {
      timeout.cancel(false);
      // Bytes after the handshake are transport frames: the codec goes in before we leave, and
      // ByteToMessageDecoder passes our leftovers on when we are removed.
      ctx.pipeline().addAfter(ctx.name(), "noise-transport", new NoiseTransportCodec(noise.split()));
      promise.trySuccess(remote); // listeners add the next handler after the codec, on this loop
      ctx.pipeline().remove(this);
    }
  }

  private byte[] ourPayload() {
    byte[] sig = identity.sign(Bytes.concat(SIG_PREFIX, noise.localStatic()));
    NoiseHandshakePayload.Builder p = NoiseHandshakePayload.newBuilder()
        .setIdentityKey(ByteString.copyFrom(identity.publicKeyProto()))
        .setIdentitySig(ByteString.copyFrom(sig));
    if (!muxers.isEmpty()) {
      p.setExtensions(NoiseExtensions.newBuilder().addAllStreamMuxers(muxers));
    }
    return p.build().toByteArray();
  }

  private Result verify(byte[] payload) {
    NoiseHandshakePayload p;
    try {
      p = NoiseHandshakePayload.parseFrom(payload);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolationException("noise handshake payload is not valid protobuf", e);
    }
    byte[] key = p.getIdentityKey().toByteArray();
    if (!Identity.verify(key, Bytes.concat(SIG_PREFIX, noise.remoteStatic()), p.getIdentitySig().toByteArray())) {
      throw new ProtocolViolationException("noise: the remote's signature over its static key does not verify");
    }
    PeerId id = PeerId.fromPublicKey(key);
    if (expected != null && !expected.equals(id)) {
      throw new ProtocolViolationException("noise: dialed " + expected + " but the remote is " + id);
    }
    return new Result(id, key, p.getExtensions().getStreamMuxersList());
  }

  private static void send(ChannelHandlerContext ctx, byte[] msg) {
    ByteBuf b = ctx.alloc().buffer(2 + msg.length);
    b.writeShort(msg.length);
    b.writeBytes(msg);
    ctx.writeAndFlush(b);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof io.netty.handler.codec.DecoderException && cause.getCause() != null
        ? cause.getCause() : cause;
    fail(ctx, c);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    fail(ctx, new dev.dsd.p2p.core.P2pException("connection closed during the noise handshake"));
    super.channelInactive(ctx);
  }

  private void fail(ChannelHandlerContext ctx, Throwable cause) {
    if (promise.tryFailure(cause)) {
      if (timeout != null) {
        timeout.cancel(false);
      }
      ctx.close();
    }
  }

}
