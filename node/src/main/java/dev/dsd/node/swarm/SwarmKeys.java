package dev.dsd.node.swarm;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The DHT keys under which nodes announce what they serve (as provider records). Hashed so keys
 * are uniform in the Kademlia space; the model id is itself a hash of config + weights, so nodes
 * with other weights under the same name never share a key.
 */
public final class SwarmKeys {
  private SwarmKeys() {}

  /** Every node that serves layers of any target: how an entry finds the swarm's models. */
  public static byte[] anyModel() {
    return key("dsd/models");
  }

  /** Nodes serving some layers of this model. */
  public static byte[] model(String modelId) {
    return key("dsd/model/" + modelId);
  }

  /** Nodes serving exactly this layer range: replicas for failover. */
  public static byte[] shard(String modelId, int from, int to) {
    return key("dsd/shard/" + modelId + "/" + from + "-" + to);
  }

  /** Draft nodes whose tokenizer has this hash. */
  public static byte[] draft(String vocabId) {
    return key("dsd/draft/" + vocabId);
  }

  private static byte[] key(String s) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
