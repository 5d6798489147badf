package dev.dsd.testnet.sim;

import dev.dsd.p2p.core.PeerId;
import java.nio.ByteBuffer;

/**
 * A simulated process: a target stage (layers {@code [from, to)}), a draft node or an entry. Its
 * link delays what it receives by {@code inMs} and what it sends by {@code outMs}; bytes arriving
 * leave its link in order, at the link's rate.
 */
final class SimPeer {
  enum Role { STAGE, DRAFT, ENTRY }

  final int index;
  final PeerId id;
  final Role role;
  final int from;
  final int to;
  final double inMs;
  final double outMs;
  BatchServer server;
  boolean alive = true;
  int sessions;
  private double lastRelease;

  SimPeer(int index, Role role, int from, int to, double inMs, double outMs) {
    this.index = index;
    this.role = role;
    this.from = from;
    this.to = to;
    this.inMs = inMs;
    this.outMs = outMs;
    // an identity multihash of the index: a valid, unique peer id without generating keys
    byte[] mh = ByteBuffer.allocate(10).put((byte) 0).put((byte) 8).putLong(index).array();
    this.id = PeerId.fromBytes(mh);
  }

  int layers() {
    return to - from;
  }

  /**
   * When a message the sender released at {@code sentAt} is delivered here: after both links'
   * delays and the fixed hop cost, never before the previous message (no reordering), plus its
   * time on the wire at {@code bandwidthMbit}.
   */
  double deliver(double sentAt, double delayMs, int bytes, double bandwidthMbit) {
    double arrive = sentAt + delayMs;
    double wire = bandwidthMbit == 0 ? 0 : bytes * 8.0 / (bandwidthMbit * 1000.0);
    lastRelease = Math.max(lastRelease, arrive) + wire;
    return lastRelease;
  }

  @Override
  public String toString() {
    return role == Role.STAGE ? "stage" + index + "[" + from + "," + to + ")" : role.name().toLowerCase() + index;
  }
}
