package dev.dsd.p2p.pnet;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * The 256-bit pre-shared key of a private network (libp2p pnet PSK v1), as kept in a
 * {@code swarm.key} file:
 *
 * <pre>
 *   /key/swarm/psk/1.0.0/
 *   /base16/            (or /base64/, or /bin/ followed by the 32 raw bytes)
 *   64 hex digits
 * </pre>
 *
 * Line ends may be {@code \n} or {@code \r\n}, as go-libp2p accepts. Unlike go-libp2p, which reads
 * the first 32 bytes and ignores the rest, anything but whitespace after the key is an error: a
 * truncated or doubled paste should not silently become a different network.
 */
public final class SwarmKey {
  public static final String HEADER = "/key/swarm/psk/1.0.0/";
  public static final int LENGTH = 32;

  private final byte[] key;

  private SwarmKey(byte[] key) {
    this.key = key;
  }

  public static SwarmKey of(byte[] key) {
    if (key.length != LENGTH) {
      throw new IllegalArgumentException("swarm key must be " + LENGTH + " bytes, got " + key.length);
    }
    return new SwarmKey(key.clone());
  }

  public static SwarmKey generate() {
    byte[] k = new byte[LENGTH];
    new SecureRandom().nextBytes(k);
    return new SwarmKey(k);
  }

  /** Reads a swarm key file; format errors name the file and what is wrong with it. */
  public static SwarmKey load(Path file) throws IOException {
    return parse(Files.readAllBytes(file), file.toString());
  }

  /** Parses the contents of a swarm key file; {@code source} names it in errors. */
  public static SwarmKey parse(byte[] contents, String source) {
    int[] pos = {0};
    String header = line(contents, pos);
    if (header == null || !header.equals(HEADER)) {
      throw bad(source, "expected header " + HEADER + " on line 1, got " + quote(header));
    }
    String encoding = line(contents, pos);
    if (encoding == null) {
      throw bad(source, "missing encoding line 2 (/base16/, /base64/ or /bin/)");
    }
    byte[] rest = Arrays.copyOfRange(contents, pos[0], contents.length);
    byte[] key = switch (encoding) {
      case "/base16/" -> base16(rest, source);
      case "/base64/" -> base64(rest, source);
      case "/bin/" -> rest;
      default -> throw bad(source, "unknown encoding " + quote(encoding) + " on line 2, expected /base16/, /base64/ or /bin/");
    };
    if (key.length != LENGTH) {
      throw bad(source, "key is " + key.length + " bytes, expected " + LENGTH
          + (encoding.equals("/base16/") ? " (" + 2 * LENGTH + " hex digits)" : ""));
    }
    return new SwarmKey(key);
  }

  private static byte[] base16(byte[] rest, String source) {
    String hex = new String(rest, StandardCharsets.US_ASCII).strip();
    if (hex.length() != 2 * LENGTH) {
      throw bad(source, "key on line 3 has " + hex.length() + " characters, expected " + 2 * LENGTH + " hex digits");
    }
    for (int i = 0; i < hex.length(); i++) {
      if (Character.digit(hex.charAt(i), 16) < 0) {
        throw bad(source, "key on line 3 has a non-hex character " + quote(hex.substring(i, i + 1))
            + " at column " + (i + 1));
      }
    }
    return HexFormat.of().parseHex(hex);
  }

  private static byte[] base64(byte[] rest, String source) {
    try {
      return Base64.getDecoder().decode(new String(rest, StandardCharsets.US_ASCII).strip());
    } catch (IllegalArgumentException e) {
      throw bad(source, "key on line 3 is not base64: " + e.getMessage());
    }
  }

  /** The next line without its line end, or null at the end of the input. */
  private static String line(byte[] b, int[] pos) {
    if (pos[0] >= b.length) {
      return null;
    }
    int start = pos[0];
    int end = start;
    while (end < b.length && b[end] != '\n') {
      end++;
    }
    pos[0] = Math.min(b.length, end + 1);
    int stop = end > start && b[end - 1] == '\r' ? end - 1 : end;
    return new String(b, start, stop - start, StandardCharsets.UTF_8);
  }

  private static String quote(String s) {
    if (s == null) {
      return "end of file";
    }
    return "'" + (s.length() > 40 ? s.substring(0, 40) + "…" : s) + "'";
  }

  private static IllegalArgumentException bad(String source, String what) {
    return new IllegalArgumentException("swarm key file " + source + ": " + what);
  }

  byte[] bytes() {
    return key.clone();
  }

  /** The file form, {@code /base16/}, as js- and go-libp2p write it. */
  public String encode() {
    return HEADER + "\n/base16/\n" + HexFormat.of().formatHex(key) + "\n";
  }

  /**
   * A short, one-way id of the key for logs, so operators can tell whether two nodes hold the same
   * key without printing it. dsd's own: not the fingerprint go-libp2p prints.
   */
  public String fingerprint() {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(key);
      return HexFormat.of().formatHex(d, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SwarmKey k && MessageDigest.isEqual(key, k.key);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(key);
  }

  /** Never the key itself: configs get logged. */
  @Override
  public String toString() {
    return "SwarmKey[" + fingerprint() + "]";
  }
}
