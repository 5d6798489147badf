package dev.dsd.p2p.host;

/**
 * Sets up a stream once its protocol is agreed. Called on the connection's event loop before any
 * byte after the negotiation is delivered, so handlers added here see the whole protocol.
 */
@FunctionalInterface
public interface StreamHandler {
  void initStream(Stream stream);
}
