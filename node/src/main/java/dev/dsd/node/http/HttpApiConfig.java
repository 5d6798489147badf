package dev.dsd.node.http;

import dev.dsd.node.entry.GenerationQueue;

/**
 * Where the HTTP API listens and the limits it enforces.
 *
 * @param host address to bind, e.g. {@code 127.0.0.1} or {@code 0.0.0.0}
 * @param port TCP port; 0 picks a free one
 * @param maxConcurrentGenerations generations that may run at once; requests beyond that wait in a
 *     FIFO queue
 * @param maxBodyBytes largest request body accepted, in bytes; larger ones get 413
 * @param maxQueuedRequests requests that may wait for a generation slot; beyond that, 503 with
 *     Retry-After
 */
public record HttpApiConfig(String host, int port, int maxConcurrentGenerations, int maxBodyBytes,
    int maxQueuedRequests) {
  public static final int DEFAULT_MAX_CONCURRENT_GENERATIONS = GenerationQueue.DEFAULT_SLOTS;
  public static final int DEFAULT_MAX_QUEUED_REQUESTS = GenerationQueue.DEFAULT_MAX_WAITING;
  public static final int DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

  public HttpApiConfig {
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("HTTP host is empty");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("HTTP port must be in [0, 65535], got " + port);
    }
    if (maxConcurrentGenerations < 1) {
      throw new IllegalArgumentException("max concurrent generations must be at least 1, got " + maxConcurrentGenerations);
    }
    if (maxQueuedRequests < 0) {
      throw new IllegalArgumentException("max queued requests must be at least 0, got " + maxQueuedRequests);
    }
    if (maxBodyBytes < 1024) {
      throw new IllegalArgumentException("max body must be at least 1024 bytes, got " + maxBodyBytes);
    }
  }

  public HttpApiConfig(String host, int port, int maxConcurrentGenerations, int maxBodyBytes) {
    this(host, port, maxConcurrentGenerations, maxBodyBytes, DEFAULT_MAX_QUEUED_REQUESTS);
  }

  /** Default limits on {@code host:port}. */
  public static HttpApiConfig of(String host, int port) {
    return new HttpApiConfig(host, port, DEFAULT_MAX_CONCURRENT_GENERATIONS, DEFAULT_MAX_BODY_BYTES);
  }

  /** Parses {@code HOST:PORT} as given to {@code --http}; IPv6 hosts go in brackets: {@code [::1]:8080}. */
  public static HttpApiConfig parse(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      throw new IllegalArgumentException("expected HOST:PORT, got '" + hostPort + "'");
    }
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(hostPort.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("expected HOST:PORT with a numeric port, got '" + hostPort + "'");
    }
    return of(host, port);
  }

  public HttpApiConfig withMaxConcurrentGenerations(int n) {
    return new HttpApiConfig(host, port, n, maxBodyBytes, maxQueuedRequests);
  }

  public HttpApiConfig withMaxBodyBytes(int n) {
    return new HttpApiConfig(host, port, maxConcurrentGenerations, n, maxQueuedRequests);
  }

  public HttpApiConfig withMaxQueuedRequests(int n) {
    return new HttpApiConfig(host, port, maxConcurrentGenerations, maxBodyBytes, n);
  }
}
