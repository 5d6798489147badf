package dev.dsd.p2p.host;

/**
 * Whether other peers can dial this node, as AutoNAT servers reported it.
 *
 * @param status PUBLIC: servers dialed us back; PRIVATE: their dials failed (behind NAT or a
 *     firewall); UNKNOWN: too few answers yet, or they disagree
 * @param confidence how many distinct servers agree with {@code status} (0 when UNKNOWN)
 */
public record Reachability(Status status, int confidence) {
  public enum Status { UNKNOWN, PUBLIC, PRIVATE }

  public static final Reachability UNKNOWN = new Reachability(Status.UNKNOWN, 0);

  public boolean isPrivate() {
    return status == Status.PRIVATE;
  }

  @Override
  public String toString() {
    return status.name().toLowerCase() + (status == Status.UNKNOWN ? "" : " (" + confidence + " servers)");
  }
}
