package dev.dsd.p2p.kad;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Decides whether a DHT record may be stored and which of several is best, per key namespace
 * (the first path segment: {@code /pk/...}, {@code /dsd/...}). Keys in namespaces without a
 * validator are refused, as go- and js-libp2p refuse them.
 */
public interface RecordValidator {
  /** Throws {@link ProtocolViolationException} with the reason when the record is invalid. */
  void validate(byte[] key, byte[] value);

  /** Index of the best of several valid values for one key. */
  default int select(byte[] key, List<byte[]> values) {
    return 0;
  }

  /** {@code /pk/<peer id multihash>}: the value must be the public key that hashes to that id. */
  RecordValidator PUBLIC_KEY = (key, value) -> {
    byte[] id = Arrays.copyOfRange(key, 4, key.length);
    if (!PeerId.fromBytes(id).matches(value)) {
      throw new ProtocolViolationException("/pk/ record: the value is not the public key of the peer in the key");
    }
  };

  static String namespace(byte[] key) {
    String k = new String(key, StandardCharsets.ISO_8859_1);
    if (!k.startsWith("/")) {
      return "";
    }
    int end = k.indexOf('/', 1);
    return end < 0 ? "" : k.substring(1, end);
  }
}
