package dev.dsd.p2p.core;

/** Base of p2p's exceptions: something about a peer, a connection or a message went wrong. */
public class P2pException extends RuntimeException {
  public P2pException(String message) {
    super(message);
  }

  public P2pException(String message, Throwable cause) {
    super(message, cause);
  }
}
