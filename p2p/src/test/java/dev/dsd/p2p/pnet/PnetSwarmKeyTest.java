package dev.dsd.p2p.pnet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.Bytes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** swarm.key files as go-ipfs/kubo and js-libp2p write them, and the ways they go wrong. */
class PnetSwarmKeyTest {
  static final String HEX = "dffb7e3135399a8b1612b2aaca1c36a3a8ac2cd0cca51ceeb2ced87d308cac6d";
  static final byte[] KEY = HexFormat.of().parseHex(HEX);

  static SwarmKey parse(String text) {
    return SwarmKey.parse(text.getBytes(StandardCharsets.UTF_8), "swarm.key");
  }

  static String error(String text) {
    return assertThrows(IllegalArgumentException.class, () -> parse(text)).getMessage();
  }

  @Test
  void base16WithAnyLineEnd() {
    assertArrayEquals(KEY, parse("/key/swarm/psk/1.0.0/\n/base16/\n" + HEX).bytes());
    assertArrayEquals(KEY, parse("/key/swarm/psk/1.0.0/\n/base16/\n" + HEX + "\n").bytes());
    assertArrayEquals(KEY, parse("/key/swarm/psk/1.0.0/\r\n/base16/\r\n" + HEX.toUpperCase() + "\r\n").bytes());
  }

  @Test
  void base64AndBin() {
    assertArrayEquals(KEY, parse("/key/swarm/psk/1.0.0/\n/base64/\n" + Base64.getEncoder().encodeToString(KEY) + "\n").bytes());
    byte[] bin = Bytes.concat("/key/swarm/psk/1.0.0/\n/bin/\n".getBytes(StandardCharsets.US_ASCII), KEY);
    assertArrayEquals(KEY, SwarmKey.parse(bin, "swarm.key").bytes());
  }

  @Test
  void encodeParsesBackAndToStringHidesTheKey() {
    SwarmKey k = SwarmKey.generate();
    assertEquals(k, parse(k.encode()));
    assertNotEquals(k, SwarmKey.generate());
    String hex = HexFormat.of().formatHex(k.bytes());
    assertFalse(k.toString().contains(hex.substring(0, 16)), k.toString());
    assertTrue(k.toString().contains(k.fingerprint()));
  }

  @Test
  void wrongHeader() {
    String m = error("/key/swarm/psk/2.0.0/\n/base16/\n" + HEX);
    assertTrue(m.startsWith("swarm key file swarm.key: expected header /key/swarm/psk/1.0.0/ on line 1"), m);
    assertTrue(m.contains("'/key/swarm/psk/2.0.0/'"), m);
    assertTrue(error("").contains("got end of file"));
  }

  @Test
  void missingOrUnknownEncoding() {
    assertTrue(error("/key/swarm/psk/1.0.0/\n").contains("missing encoding line 2"));
    String m = error("/key/swarm/psk/1.0.0/\n/base58/\n" + HEX);
    assertTrue(m.contains("unknown encoding '/base58/' on line 2"), m);
  }

  @Test
  void wrongLength() {
    String m = error("/key/swarm/psk/1.0.0/\n/base16/\n" + HEX.substring(2));
    assertTrue(m.contains("has 62 characters, expected 64 hex digits"), m);
    m = error("/key/swarm/psk/1.0.0/\n/base16/\n" + HEX + "\n" + HEX + "\n");
    assertTrue(m.contains("expected 64 hex digits"), m);
    m = error("/key/swarm/psk/1.0.0/\n/base64/\n" + Base64.getEncoder().encodeToString(new byte[31]));
    assertTrue(m.contains("key is 31 bytes, expected 32"), m);
    assertTrue(assertThrows(IllegalArgumentException.class, () -> SwarmKey.parse(
        "/key/swarm/psk/1.0.0/\n/bin/\nshort".getBytes(StandardCharsets.US_ASCII), "k")).getMessage()
        .contains("key is 5 bytes, expected 32"));
  }

  @Test
  void badHex() {
    String m = error("/key/swarm/psk/1.0.0/\n/base16/\n" + HEX.substring(0, 10) + "zz" + HEX.substring(12));
    assertTrue(m.contains("non-hex character 'z' at column 11"), m);
    assertTrue(error("/key/swarm/psk/1.0.0/\n/base64/\n!!notbase64!!").contains("is not base64"));
  }

  @Test
  void loadNamesTheFile(@TempDir Path dir) throws Exception {
    Path good = dir.resolve("swarm.key");
    Files.writeString(good, "/key/swarm/psk/1.0.0/\n/base16/\n" + HEX + "\n");
    assertArrayEquals(KEY, SwarmKey.load(good).bytes());
    Path bad = dir.resolve("bad.key");
    Files.writeString(bad, HEX + "\n");
    String m = assertThrows(IllegalArgumentException.class, () -> SwarmKey.load(bad)).getMessage();
    assertTrue(m.startsWith("swarm key file " + bad + ": "), m);
  }
}
