package dev.dsd.p2p.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Peer ids, keys and multiaddrs against the specs' test vectors, plus fuzzing of their parsers. */
class IdentityAndAddressTest {
  static final HexFormat HEX = HexFormat.of();
  // github.com/libp2p/specs peer-ids/peer-ids.md, "Test vectors"
  static final String ED_PRIVATE = "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
      + "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
  static final String ED_PUBLIC = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
  static final String ED_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

  @TempDir Path tmp;

  @Test
  void specVectorKeysAndPeerId() {
    Identity id = Identity.fromProtobuf(HEX.parseHex(ED_PRIVATE));
    assertArrayEquals(HEX.parseHex(ED_PUBLIC), id.publicKeyProto(), "public key derived from the seed");
    assertArrayEquals(HEX.parseHex(ED_PRIVATE), id.toProtobuf());
    assertEquals(ED_PEER_ID, id.peerId().toBase58());
    assertEquals(id.peerId(), PeerId.parse(ED_PEER_ID));
    assertEquals(id.peerId(), PeerId.parse(id.peerId().toCid()));
    assertTrue(id.peerId().toCid().startsWith("bafz"), id.peerId().toCid());
    assertArrayEquals(HEX.parseHex(ED_PUBLIC), id.peerId().inlinePublicKey());
    byte[] sig = id.sign("hello".getBytes());
    assertTrue(Identity.verify(id.publicKeyProto(), "hello".getBytes(), sig));
    assertFalse(Identity.verify(id.publicKeyProto(), "hellO".getBytes(), sig));
  }

  @Test
  void legacySha256PeerIdsParse() {
    // An RSA-era id (sha2-256 multihash) from the bootstrap list of IPFS.
    PeerId p = PeerId.parse("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN");
    assertEquals("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", p.toBase58());
    assertEquals(34, p.toBytes().length);
    assertEquals(p, PeerId.parse(p.toCid()));
  }

  @Test
  void keyFileIsCreatedPrivateAndReloaded() throws Exception {
    Path f = tmp.resolve("keys/node.key");
    Identity a = Identity.loadOrCreate(f);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    assertEquals(a.peerId(), Identity.loadOrCreate(f).peerId());
    Files.write(f, new byte[] {1, 2, 3});
    assertThrows(P2pException.class, () -> Identity.loadOrCreate(f));
  }

  @Test
  void multiaddrBinaryAndTextForms() {
    Multiaddr a = Multiaddr.parse("/ip4/127.0.0.1/tcp/4001");
    assertEquals("047f000001060fa1", HEX.formatHex(a.toBytes()));
    assertEquals(a, Multiaddr.fromBytes(a.toBytes()));
    Multiaddr six = Multiaddr.parse("/ip6/::1/tcp/8080");
    assertEquals("29" + "00000000000000000000000000000001" + "061f90", HEX.formatHex(six.toBytes()));
    assertEquals("/ip6/::1/tcp/8080", six.toString());
    Multiaddr dns = Multiaddr.parse("/dns4/example.com/tcp/443/p2p/" + ED_PEER_ID);
    assertEquals(PeerId.parse(ED_PEER_ID), dns.peerId());
    assertEquals(dns, Multiaddr.fromBytes(dns.toBytes()));
    assertEquals("/dns4/example.com/tcp/443/p2p/" + ED_PEER_ID, dns.toString());
    assertEquals("/ip4/127.0.0.1/tcp/4001/p2p/" + ED_PEER_ID,
        Multiaddr.parse("/ip4/127.0.0.1/tcp/4001/ipfs/" + ED_PEER_ID).toString());
    assertEquals("/dns6/h/tcp/1", Multiaddr.parse("/dns6/h/tcp/1").toString());
    assertEquals("/dns/h/tcp/1", Multiaddr.fromBytes(Multiaddr.parse("/dns/h/tcp/1").toBytes()).toString());
    for (String bad : new String[] {"ip4/1.2.3.4", "/ip4/1.2.3", "/ip4/1.2.3.4/tcp/70000", "/udp/1", "/tcp",
        "/p2p/notapeer", "/ip6/1.2.3.4"}) {
      assertThrows(IllegalArgumentException.class, () -> Multiaddr.parse(bad), bad);
    }
  }

  @Test
  void varintVectorsAndLimits() {
    // multiformats/unsigned-varint examples
    Object[][] cases = {{1L, "01"}, {127L, "7f"}, {128L, "8001"}, {255L, "ff01"}, {300L, "ac02"}, {16384L, "808001"}};
    for (Object[] c : cases) {
      long v = (Long) c[0];
      assertEquals(c[1], HEX.formatHex(Varint.encode(v)));
      ByteBuf b = Unpooled.wrappedBuffer(Varint.encode(v));
      assertEquals(v, Varint.read(b));
    }
    assertEquals(Varint.NEED_MORE, Varint.read(Unpooled.wrappedBuffer(new byte[] {(byte) 0x80})));
    assertThrows(ProtocolViolationException.class, () -> Varint.read(Unpooled.wrappedBuffer(new byte[] {(byte) 0x81, 0})));
    byte[] ten = new byte[10];
    java.util.Arrays.fill(ten, (byte) 0xff);
    assertThrows(ProtocolViolationException.class, () -> Varint.read(Unpooled.wrappedBuffer(ten)));
  }

  /** Random and mutated inputs: only the documented exceptions, never anything else. */
  @Test
  void fuzzParsers() {
    SplittableRandom r = new SplittableRandom(2026);
    byte[] valid = Multiaddr.parse("/ip4/10.0.0.1/tcp/9/p2p/" + ED_PEER_ID).toBytes();
    int accepted = 0;
    for (int i = 0; i < 20_000; i++) {
      byte[] in;
      if (i % 2 == 0) {
        in = new byte[r.nextInt(0, 64)];
        r.nextBytes(in);
      } else {
        in = valid.clone();
        for (int m = r.nextInt(1, 4); m > 0; m--) {
          in[r.nextInt(in.length)] = (byte) r.nextInt(256);
        }
        if (r.nextBoolean()) {
          in = java.util.Arrays.copyOf(in, r.nextInt(in.length + 1));
        }
      }
      try {
        Multiaddr.fromBytes(in);
        accepted++;
      } catch (ProtocolViolationException expected) {
        // rejected with a reason
      }
      try {
        PeerId.fromBytes(in);
      } catch (ProtocolViolationException expected) {
        // rejected with a reason
      }
      try {
        Varint.read(Unpooled.wrappedBuffer(in));
      } catch (ProtocolViolationException expected) {
        // rejected with a reason
      }
      String text = new String(in, java.nio.charset.StandardCharsets.ISO_8859_1);
      try {
        PeerId.parse(text);
      } catch (ProtocolViolationException expected) {
        // rejected with a reason
      }
      try {
        Multiaddr.parse("/" + text);
      } catch (IllegalArgumentException expected) {
        // rejected with a reason
      }
    }
    assertTrue(accepted > 0, "some mutations stay valid, so the fuzzer reaches the success path");
  }
}
