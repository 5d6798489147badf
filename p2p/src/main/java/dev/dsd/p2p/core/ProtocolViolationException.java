package dev.dsd.p2p.core;

/** The remote peer broke a protocol (malformed frame, bad signature, wrong state): grounds to ban it. */
public class ProtocolViolationException extends P2pException {
  public ProtocolViolationException(String message) {
    super(message);
  }

  public ProtocolViolationException(String message, Throwable cause) {
    super(message, cause);
  }
}
