package dev.dsd.node;

import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.relay.RelayLimits;

/**
 * How a node takes part in circuit relay v2, apart from {@link NodeConfig} so that settings made
 * without it keep their meaning.
 *
 * @param service offer relay service (the hop protocol) to other peers, within {@code limits}
 * @param limits what the relay service grants
 * @param reachability UNKNOWN: follow AutoNAT's verdict (PRIVATE reserves relay slots, advertises
 *     /p2p-circuit addresses and dials from the listen port; PUBLIC drops them); PRIVATE or PUBLIC:
 *     the operator's word, which AutoNAT does not override
 * @param holePunch upgrade relayed connections to direct ones (DCUtR); off only to test the relay path
 */
public record RelayOptions(boolean service, RelayLimits limits, Reachability.Status reachability,
    boolean holePunch) {
  public static RelayOptions defaults() {
    return new RelayOptions(false, RelayLimits.defaults(), Reachability.Status.UNKNOWN, true);
  }
}
