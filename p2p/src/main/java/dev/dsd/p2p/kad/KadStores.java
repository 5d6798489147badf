package dev.dsd.p2p.kad;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.multiaddr.AddrScope;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Provider records and value records this node holds for the DHT, bounded in count and expiring
 * (TTLs from the kad-dht spec: providers 48 h, records 36 h).
 *
 * <p>Provider records are kept so that no one can push others out: when a limit is reached the
 * records already held stay and the newcomer is refused (only expired records make room). One
 * provider holds at most {@link #MAX_KEYS_PER_PROVIDER} keys, so a peer announcing 10,000 keys
 * fills at most that many slots; one key takes at most {@link #MAX_PROVIDERS_PER_KEY} providers,
 * of which at most {@link #MAX_PROVIDERS_PER_NETWORK} from one public network (a /24 in IPv4, a /48
 * in IPv6), so a hundred cheap identities on one host cannot crowd a key's honest providers out.
 */
final class KadStores {
  static final Duration PROVIDER_TTL = Duration.ofHours(48);
  static final Duration RECORD_TTL = Duration.ofHours(36);
  static final int MAX_KEYS = 10_000;
  static final int MAX_PROVIDERS_PER_KEY = 100;
  static final int MAX_KEYS_PER_PROVIDER = 256;
  static final int MAX_PROVIDERS_PER_NETWORK = 4;
  static final int MAX_RECORDS = 10_000;
  static final int MAX_RECORD_BYTES = 64 * 1024;

  record StoredRecord(byte[] value, long receivedMillis) {}

  /** One provider record: when it expires and the network it was announced from (null: not public). */
  private record Entry(long expiresMillis, String network) {}

  private final Map<ByteString, LinkedHashMap<PeerId, Entry>> providers = new LinkedHashMap<>();
  private final Map<PeerId, Integer> keysPerProvider = new HashMap<>();
  private final Map<ByteString, StoredRecord> records = new LinkedHashMap<>();
  private final Map<String, RecordValidator> validators;

  KadStores(Map<String, RecordValidator> validators) {
    this.validators = validators;
  }

  /** Our own record: always kept. */
  synchronized void addProvider(byte[] key, PeerId provider) {
    ByteString k = ByteString.copyFrom(key);
    LinkedHashMap<PeerId, Entry> set = providers.computeIfAbsent(k, x -> new LinkedHashMap<>());
    if (set.put(provider, new Entry(System.currentTimeMillis() + PROVIDER_TTL.toMillis(), null)) == null) {
      keysPerProvider.merge(provider, 1, Integer::sum);
    }
  }

  /**
   * A record another peer announced from {@code network} (null when its address is not public).
   * Returns null when stored, else why it was refused.
   */
  synchronized String addRemoteProvider(byte[] key, PeerId provider, String network) {
    long now = System.currentTimeMillis();
    ByteString k = ByteString.copyFrom(key);
    LinkedHashMap<PeerId, Entry> set = providers.get(k);
    if (set != null && set.containsKey(provider)) {
      set.put(provider, new Entry(now + PROVIDER_TTL.toMillis(), network)); // a refresh
      return null;
    }
    if (keysPerProvider.getOrDefault(provider, 0) >= MAX_KEYS_PER_PROVIDER) {
      purgeExpired(now);
      if (keysPerProvider.getOrDefault(provider, 0) >= MAX_KEYS_PER_PROVIDER) {
        return "provider holds " + MAX_KEYS_PER_PROVIDER + " keys here, the limit";
      }
    }
    if (set == null) {
      if (providers.size() >= MAX_KEYS) {
        purgeExpired(now);
        if (providers.size() >= MAX_KEYS) {
          return "store holds " + MAX_KEYS + " keys, the limit";
        }
      }
      set = new LinkedHashMap<>();
      providers.put(k, set);
    }
    expire(set, now);
    if (set.size() >= MAX_PROVIDERS_PER_KEY) {
      return "key has " + MAX_PROVIDERS_PER_KEY + " providers, the limit";
    }
    if (network != null) {
      long same = set.values().stream().filter(e -> network.equals(e.network())).count();
      if (same >= MAX_PROVIDERS_PER_NETWORK) {
        return "key has " + same + " providers from network " + network + ", the limit";
      }
    }
    set.put(provider, new Entry(now + PROVIDER_TTL.toMillis(), network));
    keysPerProvider.merge(provider, 1, Integer::sum);
    return null;
  }

  synchronized List<PeerId> providers(byte[] key) {
    ByteString k = ByteString.copyFrom(key);
    LinkedHashMap<PeerId, Entry> set = providers.get(k);
    if (set == null) {
      return List.of();
    }
    expire(set, System.currentTimeMillis());
    if (set.isEmpty()) {
      providers.remove(k);
    }
    return new ArrayList<>(set.keySet());
  }

  synchronized void removeProvider(byte[] key, PeerId provider) {
    LinkedHashMap<PeerId, Entry> set = providers.get(ByteString.copyFrom(key));
    if (set != null && set.remove(provider) != null) {
      forget(provider);
    }
  }

  synchronized int keysOf(PeerId provider) {
    return keysPerProvider.getOrDefault(provider, 0);
  }

  private void expire(LinkedHashMap<PeerId, Entry> set, long now) {
    set.entrySet().removeIf(e -> {
      boolean gone = e.getValue().expiresMillis() < now;
      if (gone) {
        forget(e.getKey());
      }
      return gone;
    });
  }

  private void purgeExpired(long now) {
    providers.values().forEach(set -> expire(set, now));
    providers.values().removeIf(Map::isEmpty);
  }

  private void forget(PeerId provider) {
    keysPerProvider.computeIfPresent(provider, (p, n) -> n <= 1 ? null : n - 1);
  }

  /** Validates and stores; keeps the better of an existing and a new value. */
  synchronized void putRecord(byte[] key, byte[] value) {
    RecordValidator v = validator(key);
    if (value.length > MAX_RECORD_BYTES) {
      throw new ProtocolViolationException("record of " + value.length + " bytes exceeds " + MAX_RECORD_BYTES);
    }
    v.validate(key, value);
    ByteString k = ByteString.copyFrom(key);
    StoredRecord old = records.get(k);
    if (old != null && v.select(key, List.of(old.value(), value)) == 0) {
      return;
    }
    if (old == null && records.size() >= MAX_RECORDS) {
      records.remove(records.keySet().iterator().next());
    }
    records.put(k, new StoredRecord(value, System.currentTimeMillis()));
  }

  synchronized StoredRecord record(byte[] key) {
    StoredRecord r = records.get(ByteString.copyFrom(key));
    if (r != null && r.receivedMillis() + RECORD_TTL.toMillis() < System.currentTimeMillis()) {
      records.remove(ByteString.copyFrom(key));
      return null;
    }
    return r;
  }

  RecordValidator validator(byte[] key) {
    String ns = RecordValidator.namespace(key);
    RecordValidator v = validators.get(ns);
    if (v == null) {
      throw new ProtocolViolationException("no validator for record namespace '" + ns + "'");
    }
    return v;
  }

  /** The network a public address belongs to, for the per-network cap: a /24 or a /48; null if not public. */
  static String network(InetAddress ip) {
    if (ip == null || AddrScope.of(ip) != AddrScope.PUBLIC) {
      return null;
    }
    byte[] b = ip.getAddress();
    int bytes = b.length == 4 ? 3 : 6;
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < bytes; i++) {
      sb.append(i == 0 ? "" : ".").append(b[i] & 0xff);
    }
    return sb + (b.length == 4 ? "/24" : "/48");
  }
}
