package dev.dsd.node;

import dev.dsd.p2p.relay.AutoRelay;
import dev.dsd.p2p.relay.RelayLimits;

/**
 * How a node takes part in circuit relay v2, apart from {@link NodeConfig} so that settings made
 * without it keep their meaning.
 *
 * @param service offer relay service (the hop protocol) to other peers, within {@code limits}
 * @param limits what the relay service grants
 * @param reachability what the node assumes about itself until AutoNAT says otherwise; PRIVATE
 *     makes it reserve relay slots and advertise /p2p-circuit addresses
 * @param holePunch upgrade relayed connections to direct ones (DCUtR); off only to test the relay path
 */
public record RelayOptions(boolean service, RelayLimits limits, AutoRelay.Reachability reachability,
    boolean holePunch) {
  public static RelayOptions defaults() {
    return new RelayOptions(false, RelayLimits.defaults(), AutoRelay.Reachability.UNKNOWN, true);
  }
}
