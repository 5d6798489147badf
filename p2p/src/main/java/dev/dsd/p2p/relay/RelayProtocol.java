package dev.dsd.p2p.relay;

import java.time.Duration;

/** Circuit relay v2's protocol ids and the limits both sides apply to its control messages. */
public final class RelayProtocol {
  public static final String HOP = "/libp2p/circuit/relay/0.2.0/hop";
  public static final String STOP = "/libp2p/circuit/relay/0.2.0/stop";
  /** A hop or stop message is a few addresses and a voucher; go- and js-libp2p cap them at 4 KiB. */
  public static final int MAX_MESSAGE = 4096;
  /** How long the relay waits for the target's answer to a stop CONNECT. */
  public static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);
  /** How long a client waits for the relay's answer to RESERVE or CONNECT. */
  public static final Duration HOP_TIMEOUT = Duration.ofSeconds(15);

  private RelayProtocol() {}
}
