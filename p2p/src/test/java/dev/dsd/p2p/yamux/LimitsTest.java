package dev.dsd.p2p.yamux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.multistream.MultistreamHandler;
import dev.dsd.p2p.noise.NoiseHandshakeHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Floods, oversize frames and stalled handshakes are cut off by limits and timeouts. */
class LimitsTest {

  @Test
  void streamFloodBeyondTheLimitIsRefusedWithRst() {
    int[] accepted = {0};
    EmbeddedChannel ch = new EmbeddedChannel(new YamuxFrameCodec(), new YamuxSession(false, s -> accepted[0]++));
    ByteBuf flood = Unpooled.buffer();
    int n = YamuxSession.MAX_STREAMS + 100;
    for (int i = 0; i < n; i++) {
      flood.writeByte(0).writeByte(YamuxFrame.WINDOW_UPDATE).writeShort(YamuxFrame.SYN).writeInt(2 * i + 1).writeInt(0);
    }
    ch.writeInbound(flood);
    assertEquals(YamuxSession.MAX_STREAMS, accepted[0]);
    assertEquals(YamuxSession.MAX_STREAMS, ch.pipeline().get(YamuxSession.class).streamCount());
    int rst = 0;
    ByteBuf out;
    while ((out = ch.readOutbound()) != null) {
      while (out.readableBytes() >= 12) {
        if ((out.getUnsignedShort(out.readerIndex() + 2) & YamuxFrame.RST) != 0) {
          rst++;
        }
        out.skipBytes(12);
      }
      out.release();
    }
    assertEquals(100, rst, "every stream over the limit is reset");
    assertTrue(ch.isOpen(), "the connection itself survives");
    ch.finishAndReleaseAll();
  }

  @Test
  void oversizeDataFrameClosesTheConnection() {
    EmbeddedChannel ch = new EmbeddedChannel(new YamuxFrameCodec(), new YamuxSession(false, s -> { }));
    ByteBuf f = Unpooled.buffer();
    f.writeByte(0).writeByte(YamuxFrame.DATA).writeShort(YamuxFrame.SYN).writeInt(1).writeInt(YamuxFrameCodec.MAX_DATA + 1);
    ch.writeInbound(f);
    assertFalse(ch.isOpen());
    ch.finishAndReleaseAll();
  }

  @Test
  void stalledHandshakesTimeOut() {
    NoiseHandshakeHandler noise = new NoiseHandshakeHandler(Identity.generate(), false, null, List.of());
    EmbeddedChannel a = new EmbeddedChannel(noise);
    a.writeInbound(Unpooled.wrappedBuffer(new byte[] {0, 32, 1, 2, 3})); // half of message 1, then silence
    a.advanceTimeBy(NoiseHandshakeHandler.HANDSHAKE_TIMEOUT.toMillis() + 1, TimeUnit.MILLISECONDS);
    a.runScheduledPendingTasks();
    assertTrue(noise.result().cause().getMessage().contains("did not finish"), noise.result().cause().getMessage());
    assertFalse(a.isOpen());

    MultistreamHandler ms = MultistreamHandler.responder(Set.of("/x"));
    EmbeddedChannel b = new EmbeddedChannel(ms);
    b.advanceTimeBy(MultistreamHandler.TIMEOUT.toMillis() + 1, TimeUnit.MILLISECONDS);
    b.runScheduledPendingTasks();
    assertFalse(b.isOpen());
    assertTrue(ms.result().cause().getMessage().contains("did not finish"));
  }

  @Test
  void tooManyProposalsAreCutOff() {
    MultistreamHandler ms = MultistreamHandler.responder(Set.of("/x"));
    EmbeddedChannel b = new EmbeddedChannel(ms);
    ByteBuf in = Unpooled.buffer();
    byte[] header = "/multistream/1.0.0\n".getBytes();
    in.writeByte(header.length).writeBytes(header);
    for (int i = 0; i < MultistreamHandler.MAX_ATTEMPTS + 1; i++) {
      in.writeByte(4).writeBytes("/no\n".getBytes());
    }
    b.writeInbound(in);
    assertInstanceOf(LimitExceededException.class, ms.result().cause());
    assertFalse(b.isOpen());
  }
}
