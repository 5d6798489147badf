package dev.dsd.p2p.kad;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * A point in the Kademlia keyspace: SHA-256 of a key's bytes (a peer id's multihash, a provider
 * key's multihash, a record key), as the libp2p kad-dht spec defines distance.
 */
public record KadKey(byte[] hash) {
  public static KadKey of(byte[] key) {
    try {
      return new KadKey(MessageDigest.getInstance("SHA-256").digest(key));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Length of the common prefix of the two hashes, in bits (256 when equal). */
  public int commonPrefixLength(KadKey o) {
    for (int i = 0; i < 32; i++) {
      int x = (hash[i] ^ o.hash[i]) & 0xff;
      if (x != 0) {
        return i * 8 + Integer.numberOfLeadingZeros(x) - 24;
      }
    }
    return 256;
  }

  /** Orders {@code a} and {@code b} by XOR distance to this key. */
  public int compareDistance(KadKey a, KadKey b) {
    for (int i = 0; i < 32; i++) {
      int da = (a.hash[i] ^ hash[i]) & 0xff;
      int db = (b.hash[i] ^ hash[i]) & 0xff;
      if (da != db) {
        return Integer.compare(da, db);
      }
    }
    return 0;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KadKey k && Arrays.equals(hash, k.hash);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(hash);
  }
}
