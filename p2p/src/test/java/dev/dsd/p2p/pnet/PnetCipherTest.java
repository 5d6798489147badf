package dev.dsd.p2p.pnet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The bytes on the wire, without sockets: nonce first, then XSalsa20 as NaCl defines it. */
class PnetCipherTest {
  static final HexFormat HEX = HexFormat.of();
  static final Duration TIMEOUT = Duration.ofSeconds(10);

  @Test
  void keyStreamIsNaclXsalsa20() {
    // NaCl's tests/stream3 vector (also what the npm xsalsa20 package that js-libp2p uses prints)
    SwarmKey key = SwarmKey.of(HEX.parseHex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"));
    PskCipher c = new PskCipher(key, HEX.parseHex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"));
    ByteBuf zeros = Unpooled.directBuffer(32).writeZero(32);
    c.xorInPlace(zeros, 0, 32);
    assertEquals("eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880", ByteBufUtil.hexDump(zeros));
  }

  @Test
  void writerSendsNonceThenCiphertextAndReaderUndoesIt() {
    SwarmKey key = SwarmKey.generate();
    EmbeddedChannel out = new EmbeddedChannel(new PnetWriter(key));
    byte[] plain = new byte[100_000]; // spans several chunks and key-stream blocks
    Arrays.fill(plain, (byte) 7);
    System.arraycopy(PnetReader.MULTISTREAM_HEADER, 0, plain, 0, PnetReader.MULTISTREAM_HEADER.length);
    out.writeOutbound(Unpooled.wrappedBuffer(plain, 0, 50_000), Unpooled.directBuffer().writeBytes(plain, 50_000, 50_000));
    ByteBuf wire = Unpooled.buffer();
    for (ByteBuf b; (b = out.readOutbound()) != null; b.release()) {
      wire.writeBytes(b);
    }
    assertEquals(24 + plain.length, wire.readableBytes());
    byte[] nonce = ByteBufUtil.getBytes(wire, 0, 24);
    byte[] expected = plain.clone();
    ByteBuf e = Unpooled.wrappedBuffer(expected);
    new PskCipher(key, nonce).xorInPlace(e, 0, expected.length);
    assertArrayEquals(expected, ByteBufUtil.getBytes(wire, 24, plain.length));
    assertFalse(Arrays.equals(plain, 0, 20, expected, 0, 20), "encrypted, not plaintext");

    PnetReader reader = new PnetReader(key, TIMEOUT);
    EmbeddedChannel in = new EmbeddedChannel(reader);
    for (int i = 0; i < wire.readableBytes(); i += 7) { // odd slices: nonce and header split across reads
      in.writeInbound(wire.retainedSlice(i, Math.min(7, wire.readableBytes() - i)));
    }
    ByteBuf got = Unpooled.buffer();
    for (ByteBuf b; (b = in.readInbound()) != null; b.release()) {
      got.writeBytes(b);
    }
    assertArrayEquals(plain, ByteBufUtil.getBytes(got));
    assertTrue(reader.result().isSuccess());
    assertTrue(in.isOpen());
  }

  @Test
  void readerRejectsAnotherKeyBeforeAnyByteGetsThrough() {
    EmbeddedChannel out = new EmbeddedChannel(new PnetWriter(SwarmKey.generate()));
    out.writeOutbound(Unpooled.wrappedBuffer(PnetReader.MULTISTREAM_HEADER));
    PnetReader reader = new PnetReader(SwarmKey.generate(), TIMEOUT);
    EmbeddedChannel in = new EmbeddedChannel(reader);
    for (ByteBuf b; (b = out.readOutbound()) != null; ) {
      in.writeInbound(b);
    }
    assertNull(in.readInbound());
    assertTrue(reader.result().cause() instanceof PrivateNetworkException, String.valueOf(reader.result().cause()));
    assertTrue(reader.result().cause().getMessage().contains("uses a different swarm key"), reader.result().cause().getMessage());
    assertFalse(in.isOpen());
  }

  @Test
  void readerRejectsPlaintextMultistream() {
    PnetReader reader = new PnetReader(SwarmKey.generate(), TIMEOUT);
    EmbeddedChannel in = new EmbeddedChannel(reader);
    in.writeInbound(Unpooled.wrappedBuffer(PnetReader.MULTISTREAM_HEADER)); // 20 bytes: less than a nonce
    assertNull(in.readInbound());
    assertTrue(reader.result().cause().getMessage().contains("is not in a private network"),
        reader.result().cause().getMessage());
    assertFalse(in.isOpen());
  }
}
