package dev.dsd.p2p.kad;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Provider records and value records this node holds for the DHT, bounded in count and expiring
 * (TTLs from the kad-dht spec: providers 48 h, records 36 h).
 */
final class KadStores {
  static final Duration PROVIDER_TTL = Duration.ofHours(48);
  static final Duration RECORD_TTL = Duration.ofHours(36);
  static final int MAX_KEYS = 10_000;
  static final int MAX_PROVIDERS_PER_KEY = 100;
  static final int MAX_RECORDS = 10_000;
  static final int MAX_RECORD_BYTES = 64 * 1024;

  record StoredRecord(byte[] value, long receivedMillis) {}

  private final Map<ByteString, LinkedHashMap<PeerId, Long>> providers = new LinkedHashMap<>();
  private final Map<ByteString, StoredRecord> records = new LinkedHashMap<>();
  private final Map<String, RecordValidator> validators;

  KadStores(Map<String, RecordValidator> validators) {
    this.validators = validators;
  }

  synchronized void addProvider(byte[] key, PeerId provider) {
    ByteString k = ByteString.copyFrom(key);
    LinkedHashMap<PeerId, Long> set = providers.get(k);
    if (set == null) {
      if (providers.size() >= MAX_KEYS) {
        providers.remove(providers.keySet().iterator().next()); // oldest key goes first
      }
      set = new LinkedHashMap<>();
      providers.put(k, set);
    }
    set.remove(provider);
    if (set.size() >= MAX_PROVIDERS_PER_KEY) {
      set.remove(set.keySet().iterator().next());
    }
    set.put(provider, System.currentTimeMillis() + PROVIDER_TTL.toMillis());
  }

  synchronized List<PeerId> providers(byte[] key) {
    LinkedHashMap<PeerId, Long> set = providers.get(ByteString.copyFrom(key));
    if (set == null) {
      return List.of();
    }
    long now = System.currentTimeMillis();
    set.values().removeIf(exp -> exp < now);
    return new ArrayList<>(set.keySet());
  }

  synchronized void removeProvider(byte[] key, PeerId provider) {
    LinkedHashMap<PeerId, Long> set = providers.get(ByteString.copyFrom(key));
    if (set != null) {
      set.remove(provider);
    }
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
}
