package dev.dsd.p2p.framing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.ProtocolViolationException;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/** The one reply of a request stream: parsed when whole, refused when oversize, missed when the stream ends. */
class FramedReplyTest {

  static Throwable failure(CompletableFuture<?> f) {
    return assertThrows(CompletionException.class, f::join).getCause();
  }

  @Test
  void aFrameArrivingInPiecesIsParsedOnceWholeAndTheStreamClosed() {
    EmbeddedChannel ch = new EmbeddedChannel();
    CompletableFuture<String> reply = FramedReply.read(ch, 16, b -> new String(b, StandardCharsets.UTF_8), "closed");
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {5, 'h', 'e'}));
    assertFalse(reply.isDone());
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {'l', 'l', 'o', 3, 'x', 'y', 'z'}));
    assertEquals("hello", reply.join());
    assertFalse(ch.isOpen(), "one reply is all that is read");
    ch.finishAndReleaseAll();
  }

  @Test
  void whatTheParserThrowsFailsTheReply() {
    EmbeddedChannel ch = new EmbeddedChannel();
    ProtocolViolationException refused = new ProtocolViolationException("not a reply");
    CompletableFuture<String> reply = FramedReply.read(ch, 16, b -> {
      throw refused;
    }, "closed");
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {1, 0}));
    assertSame(refused, failure(reply));
    assertFalse(ch.isOpen());
  }

  @Test
  void aFrameOverTheLimitIsRefusedBeforeItArrives() {
    EmbeddedChannel ch = new EmbeddedChannel();
    CompletableFuture<byte[]> reply = FramedReply.read(ch, 16, b -> b, "closed");
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {17}));
    Throwable t = failure(reply);
    while (t != null && !(t instanceof LimitExceededException)) {
      t = t.getCause();
    }
    assertInstanceOf(LimitExceededException.class, t);
    assertFalse(ch.isOpen());
  }

  @Test
  void aStreamEndingBeforeTheFrameIsAViolation() {
    EmbeddedChannel ch = new EmbeddedChannel();
    CompletableFuture<byte[]> reply = FramedReply.read(ch, 16, b -> b, "test stream closed before a reply");
    ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {4, 1, 2}));
    ch.close();
    Throwable t = failure(reply);
    assertInstanceOf(ProtocolViolationException.class, t);
    assertEquals("test stream closed before a reply", t.getMessage());
  }
}
