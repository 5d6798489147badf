package dev.dsd.p2p.yamux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Yamux framing and sessions between two EmbeddedChannels whose bytes are pumped across. */
class YamuxTest {
  /** Collects what a stream receives and whether the remote half-closed. */
  static final class Sink extends ChannelInboundHandlerAdapter {
    final ByteBuf got = Unpooled.buffer();
    boolean fin;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf b = (ByteBuf) msg;
      got.writeBytes(b);
      b.release();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        fin = true;
      }
    }
  }

  final List<YamuxStreamChannel> accepted = new ArrayList<>();
  final List<Sink> sinks = new ArrayList<>();

  EmbeddedChannel[] pair(boolean autoRead) {
    YamuxSession a = new YamuxSession(true, s -> { });
    YamuxSession b = new YamuxSession(false, s -> {
      Sink k = new Sink();
      s.config().setAutoRead(autoRead);
      s.pipeline().addLast(k);
      accepted.add(s);
      sinks.add(k);
    });
    return new EmbeddedChannel[] {new EmbeddedChannel(new YamuxFrameCodec(), a),
        new EmbeddedChannel(new YamuxFrameCodec(), b)};
  }

  static long pump(EmbeddedChannel a, EmbeddedChannel b) {
    long bytesAtoB = 0;
    boolean moved = true;
    while (moved) {
      moved = false;
      ByteBuf out;
      while ((out = a.readOutbound()) != null) {
        moved = true;
        bytesAtoB += out.readableBytes();
        b.writeInbound(out);
      }
      while ((out = b.readOutbound()) != null) {
        moved = true;
        a.writeInbound(out);
      }
      a.runPendingTasks();
      b.runPendingTasks();
    }
    return bytesAtoB;
  }

  /** A stream the dialer's session opened, once the open has run on its event loop. */
  static YamuxStreamChannel openStream(EmbeddedChannel dialer) throws Exception {
    var opened = dialer.pipeline().get(YamuxSession.class).openStream(ch -> { });
    dialer.runPendingTasks();
    return opened.get();
  }

  @Test
  void frameHeaderLayout() {
    EmbeddedChannel c = new EmbeddedChannel(new YamuxFrameCodec());
    c.writeOutbound(YamuxFrame.windowUpdate(3, YamuxFrame.SYN, 0x40000));
    ByteBuf b = c.readOutbound();
    assertEquals("000100010000000300040000", HexFormat.of().formatHex(io.netty.buffer.ByteBufUtil.getBytes(b)));
    c.writeInbound(b);
    YamuxFrame f = c.readInbound();
    assertEquals(YamuxFrame.WINDOW_UPDATE, f.type());
    assertEquals(3, f.streamId());
    assertEquals(0x40000, f.length());
    assertTrue(f.has(YamuxFrame.SYN));
  }

  @Test
  void streamCarriesMegabytesWithFlowControlAndHalfClose() throws Exception {
    EmbeddedChannel[] c = pair(true);
    YamuxStreamChannel s = openStream(c[0]);
    byte[] data = new byte[3 * 1024 * 1024];
    new SplittableRandom(5).nextBytes(data);
    s.writeAndFlush(Unpooled.wrappedBuffer(data));
    s.shutdownOutput();
    pump(c[0], c[1]);
    assertEquals(1, sinks.size());
    byte[] got = new byte[sinks.get(0).got.readableBytes()];
    sinks.get(0).got.readBytes(got);
    assertArrayEquals(data, got);
    assertTrue(sinks.get(0).fin, "FIN arrives after the data as input shutdown");
    assertEquals(1, accepted.get(0).streamId());
  }

  @Test
  void aStreamBothSidesHalfClosedIsGoneOnBothSides() throws Exception {
    EmbeddedChannel[] c = pair(true);
    YamuxStreamChannel s = openStream(c[0]);
    s.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {1, 2, 3}));
    s.shutdownOutput();
    pump(c[0], c[1]);
    assertTrue(sinks.get(0).fin);
    assertTrue(s.isOpen(), "only our side has half-closed: the answer may still come");
    assertEquals(1, c[0].pipeline().get(YamuxSession.class).streamCount());
    accepted.get(0).writeAndFlush(Unpooled.wrappedBuffer(new byte[] {4}));
    accepted.get(0).shutdownOutput(); // the responder answers and half-closes, as ping and kad do
    pump(c[0], c[1]);
    assertFalse(s.isOpen(), "the opener's stream closed itself once both FINs had passed");
    assertFalse(accepted.get(0).isOpen(), "and so did the responder's");
    assertEquals(0, c[0].pipeline().get(YamuxSession.class).streamCount());
    assertEquals(0, c[1].pipeline().get(YamuxSession.class).streamCount());
    assertTrue(c[0].readOutbound() == null && c[1].readOutbound() == null, "no RST or late frame follows");
  }

  @Test
  void aReaderThatDoesNotReadHoldsTheSenderToOneWindow() throws Exception {
    EmbeddedChannel[] c = pair(false);
    YamuxStreamChannel s = openStream(c[0]);
    s.writeAndFlush(Unpooled.wrappedBuffer(new byte[1024 * 1024]));
    long sent = pump(c[0], c[1]);
    assertTrue(sent < YamuxSession.INITIAL_WINDOW + 64 * 1024, "sent " + sent + " bytes into a closed window");
    assertEquals(0, sinks.get(0).got.readableBytes());
    accepted.get(0).read(); // the application reads: the window reopens
    pump(c[0], c[1]);
    accepted.get(0).read();
    pump(c[0], c[1]);
    assertTrue(sinks.get(0).got.readableBytes() > YamuxSession.INITIAL_WINDOW);
  }

  @Test
  void protocolViolationsEndTheConnectionWithGoAway() {
    EmbeddedChannel[] c = pair(true);
    ByteBuf bad = Unpooled.buffer();
    bad.writeByte(0).writeByte(0).writeShort(YamuxFrame.SYN).writeInt(2).writeInt(4).writeInt(0); // even id from the listener? we are the listener: dialer must use odd
    c[1].writeInbound(bad);
    c[1].runPendingTasks();
    ByteBuf out = c[1].readOutbound();
    assertEquals(YamuxFrame.GO_AWAY, out.getUnsignedByte(1));
    assertEquals(YamuxFrame.GO_AWAY_PROTOCOL_ERROR, out.getInt(8));
    assertFalse(c[1].isOpen());
  }

  @Test
  void pingIsAnswered() throws Exception {
    EmbeddedChannel[] c = pair(true);
    var rtt = c[0].pipeline().get(YamuxSession.class).ping();
    c[0].runPendingTasks();
    pump(c[0], c[1]);
    assertTrue(rtt.get() >= 0);
  }

  @Test
  void fuzzFrames() {
    SplittableRandom r = new SplittableRandom(17);
    for (int i = 0; i < 10_000; i++) {
      EmbeddedChannel[] c = pair(true);
      byte[] junk = new byte[r.nextInt(0, 80)];
      r.nextBytes(junk);
      if (junk.length >= 12 && r.nextBoolean()) {
        junk[0] = 0;
        junk[1] = (byte) r.nextInt(4);
      }
      try {
        c[1].writeInbound(Unpooled.wrappedBuffer(junk));
        c[1].runPendingTasks();
      } catch (RuntimeException e) {
        throw new AssertionError("exception escaped the session: " + e, e);
      }
      c[0].finishAndReleaseAll();
      c[1].finishAndReleaseAll();
    }
  }
}
