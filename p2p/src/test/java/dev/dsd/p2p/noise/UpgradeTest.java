package dev.dsd.p2p.noise;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.multistream.MultistreamHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** multistream-select and Noise between two EmbeddedChannels whose bytes are pumped across. */
class UpgradeTest {

  /** Moves outbound bytes of each channel into the other until neither has anything to send. */
  static void pump(EmbeddedChannel a, EmbeddedChannel b) {
    boolean moved = true;
    while (moved) {
      moved = false;
      for (EmbeddedChannel[] p : new EmbeddedChannel[][] {{a, b}, {b, a}}) {
        ByteBuf out;
        while ((out = p[0].readOutbound()) != null) {
          moved = true;
          if (p[1].isOpen()) {
            p[1].writeInbound(out);
          } else {
            out.release();
          }
        }
      }
      a.runPendingTasks();
      b.runPendingTasks();
    }
  }

  @Test
  void multistreamAgreesAfterNa() {
    MultistreamHandler i = MultistreamHandler.initiator(List.of("/yamux/2.0.0", "/yamux/1.0.0"));
    MultistreamHandler r = MultistreamHandler.responder(Set.of("/yamux/1.0.0"));
    EmbeddedChannel a = new EmbeddedChannel(i);
    EmbeddedChannel b = new EmbeddedChannel(r);
    pump(a, b);
    assertEquals("/yamux/1.0.0", i.result().getNow());
    assertEquals("/yamux/1.0.0", r.result().getNow());
    assertTrue(a.pipeline().get(MultistreamHandler.class) == null, "handler leaves the pipeline");
  }

  @Test
  void multistreamHandsOnBytesThatFollowInTheSameRead() {
    MultistreamHandler r = MultistreamHandler.responder(Set.of("/echo"));
    EmbeddedChannel b = new EmbeddedChannel(r);
    b.readOutbound(); // our header
    ByteBuf in = Unpooled.buffer();
    in.writeBytes(new byte[] {19}).writeBytes("/multistream/1.0.0\n".getBytes());
    in.writeBytes(new byte[] {6}).writeBytes("/echo\n".getBytes());
    in.writeBytes("hello".getBytes());
    b.writeInbound(in);
    assertEquals("/echo", r.result().getNow());
    ByteBuf rest = b.readInbound();
    assertEquals("hello", rest.toString(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void multistreamRefusesGarbageAndOversize() {
    MultistreamHandler r = MultistreamHandler.responder(Set.of("/echo"));
    EmbeddedChannel b = new EmbeddedChannel(r);
    ByteBuf in = Unpooled.buffer();
    dev.dsd.p2p.core.Varint.write(in, 5000);
    b.writeInbound(in);
    assertInstanceOf(dev.dsd.p2p.core.LimitExceededException.class, r.result().cause());
    assertFalse(b.isOpen());
  }

  private static NoiseHandshakeHandler[] handshake(Identity ia, Identity ib, dev.dsd.p2p.core.PeerId expect,
      EmbeddedChannel[] chans) {
    NoiseHandshakeHandler hi = new NoiseHandshakeHandler(ia, true, expect, List.of("/yamux/1.0.0"));
    NoiseHandshakeHandler hr = new NoiseHandshakeHandler(ib, false, null, List.of());
    chans[0] = new EmbeddedChannel(hi);
    chans[1] = new EmbeddedChannel(hr);
    pump(chans[0], chans[1]);
    return new NoiseHandshakeHandler[] {hi, hr};
  }

  @Test
  void noiseHandshakeAuthenticatesBothSidesAndEncrypts() {
    Identity ia = Identity.generate();
    Identity ib = Identity.generate();
    EmbeddedChannel[] c = new EmbeddedChannel[2];
    NoiseHandshakeHandler[] h = handshake(ia, ib, ib.peerId(), c);
    assertEquals(ib.peerId(), h[0].result().getNow().remotePeer());
    assertEquals(ia.peerId(), h[1].result().getNow().remotePeer());
    assertEquals(List.of("/yamux/1.0.0"), h[1].result().getNow().remoteMuxers());
    byte[] big = new byte[200_000];
    new SplittableRandom(1).nextBytes(big);
    c[0].writeOutbound(Unpooled.wrappedBuffer(big));
    ByteBuf wire = Unpooled.buffer();
    ByteBuf f;
    while ((f = c[0].readOutbound()) != null) {
      wire.writeBytes(f);
      f.release();
    }
    assertTrue(wire.readableBytes() > big.length, "framed and tagged");
    c[1].writeInbound(wire);
    ByteBuf got = Unpooled.buffer();
    ByteBuf m;
    while ((m = c[1].readInbound()) != null) {
      got.writeBytes(m);
      m.release();
    }
    byte[] back = new byte[got.readableBytes()];
    got.readBytes(back);
    assertArrayEquals(big, back);
  }

  @Test
  void noiseRejectsAnUnexpectedPeer() {
    Identity ia = Identity.generate();
    Identity ib = Identity.generate();
    EmbeddedChannel[] c = new EmbeddedChannel[2];
    NoiseHandshakeHandler[] h = handshake(ia, ib, Identity.generate().peerId(), c);
    assertInstanceOf(ProtocolViolationException.class, h[0].result().cause());
    assertTrue(h[0].result().cause().getMessage().contains("dialed"), h[0].result().cause().getMessage());
    assertFalse(c[0].isOpen());
  }

  @Test
  void noiseRejectsTamperedHandshakeAndTamperedFrames() {
    // Flip one byte of message 2 (inside the encrypted static key): authentication must fail.
    Identity ia = Identity.generate();
    NoiseHandshakeHandler hi = new NoiseHandshakeHandler(ia, true, null, List.of());
    NoiseHandshakeHandler hr = new NoiseHandshakeHandler(Identity.generate(), false, null, List.of());
    EmbeddedChannel a = new EmbeddedChannel(hi);
    EmbeddedChannel b = new EmbeddedChannel(hr);
    b.writeInbound((ByteBuf) a.readOutbound());
    ByteBuf m2 = b.readOutbound();
    m2.setByte(2 + 32 + 5, m2.getByte(2 + 32 + 5) ^ 1);
    a.writeInbound(m2);
    assertInstanceOf(ProtocolViolationException.class, hi.result().cause());
    assertFalse(a.isOpen());

    EmbeddedChannel[] c = new EmbeddedChannel[2];
    handshake(Identity.generate(), Identity.generate(), null, c);
    c[0].writeOutbound(Unpooled.wrappedBuffer("secret".getBytes()));
    ByteBuf frame = c[0].readOutbound();
    frame.setByte(4, frame.getByte(4) ^ 0x40);
    try {
      c[1].writeInbound(frame);
    } catch (io.netty.handler.codec.DecoderException expected) {
      assertInstanceOf(ProtocolViolationException.class, expected.getCause());
    }
  }

  /** A responder that signs its static key with a key other than the one it presents. */
  @Test
  void noiseRejectsAWrongIdentitySignature() {
    NoiseHandshakeHandler hi = new NoiseHandshakeHandler(Identity.generate(), true, null, List.of());
    EmbeddedChannel a = new EmbeddedChannel(hi);
    ByteBuf m1 = a.readOutbound();
    m1.skipBytes(2);
    byte[] msg1 = new byte[m1.readableBytes()];
    m1.readBytes(msg1);
    byte[][] st = NoiseXX.newStaticKey();
    NoiseXX liar = new NoiseXX(false, st[0], st[1]);
    liar.readMessage(msg1);
    Identity presented = Identity.generate();
    Identity signer = Identity.generate();
    byte[] sig = signer.sign(dev.dsd.p2p.core.Bytes.concat(NoiseHandshakeHandler.SIG_PREFIX, st[1]));
    byte[] payload = dev.dsd.p2p.noise.proto.NoiseProto.NoiseHandshakePayload.newBuilder()
        .setIdentityKey(com.google.protobuf.ByteString.copyFrom(presented.publicKeyProto()))
        .setIdentitySig(com.google.protobuf.ByteString.copyFrom(sig)).build().toByteArray();
    byte[] msg2 = liar.writeMessage(payload);
    a.writeInbound(Unpooled.buffer().writeShort(msg2.length).writeBytes(msg2));
    assertInstanceOf(ProtocolViolationException.class, hi.result().cause());
    assertTrue(hi.result().cause().getMessage().contains("signature"), hi.result().cause().getMessage());
    assertFalse(a.isOpen());
  }


  @Test
  void fuzzHandshakeAndMultistreamDecoders() {
    SplittableRandom r = new SplittableRandom(99);
    for (int i = 0; i < 10_000; i++) {
      byte[] junk = new byte[r.nextInt(0, 300)];
      r.nextBytes(junk);
      if (i % 3 == 0 && junk.length > 2) {
        junk[0] = 0; // plausible noise length prefix
        junk[1] = (byte) (junk.length - 2);
      }
      EmbeddedChannel ch = i % 2 == 0
          ? new EmbeddedChannel(new NoiseHandshakeHandler(Identity.fromSeed(new byte[32]), false, null, List.of()))
          : new EmbeddedChannel(MultistreamHandler.responder(Set.of("/x")));
      try {
        ch.writeInbound(Unpooled.wrappedBuffer(junk));
      } catch (io.netty.handler.codec.DecoderException e) {
        assertInstanceOf(P2pException.class, e.getCause(), "only typed errors escape");
      }
      ch.finishAndReleaseAll();
    }
  }
}
