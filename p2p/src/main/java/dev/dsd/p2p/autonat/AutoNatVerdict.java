package dev.dsd.p2p.autonat;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The reachability AutoNAT answers add up to: the latest answer of each server (at most
 * {@link #MAX_SERVERS}, the oldest forgotten first, each valid for {@code ttlMillis}); PUBLIC or
 * PRIVATE when at least {@code minAgreeing} servers say so and more say so than the opposite.
 * Between verdicts (a tie, too few answers) the previous verdict stands, so one dissenting server
 * does not flap the node between DHT modes.
 */
final class AutoNatVerdict {
  static final int MAX_SERVERS = 16;

  private record Answer(boolean ok, List<Multiaddr> asked, long atMillis) {}

  private final int minAgreeing;
  private final long ttlMillis;
  private final Map<PeerId, Answer> answers = new LinkedHashMap<>();
  private Reachability current = Reachability.UNKNOWN;

  AutoNatVerdict(int minAgreeing, long ttlMillis) {
    if (minAgreeing < 1) {
      throw new IllegalArgumentException("minAgreeing " + minAgreeing + " must be at least 1");
    }
    this.minAgreeing = minAgreeing;
    this.ttlMillis = ttlMillis;
  }

  synchronized void add(PeerId server, boolean ok, List<Multiaddr> asked, long now) {
    answers.remove(server);
    if (answers.size() >= MAX_SERVERS) {
      answers.remove(answers.keySet().iterator().next());
    }
    answers.put(server, new Answer(ok, List.copyOf(asked), now));
  }

  synchronized boolean hasFreshAnswer(PeerId server, long now) {
    Answer a = answers.get(server);
    return a != null && a.atMillis + ttlMillis > now;
  }

  synchronized void clearAnswers() {
    answers.clear();
  }

  synchronized Reachability reachability(long now) {
    answers.values().removeIf(a -> a.atMillis + ttlMillis <= now);
    int ok = 0;
    int failed = 0;
    for (Answer a : answers.values()) {
      if (a.ok) {
        ok++;
      } else {
        failed++;
      }
    }
    if (ok >= minAgreeing && ok > failed) {
      current = new Reachability(Reachability.Status.PUBLIC, ok);
    } else if (failed >= minAgreeing && failed > ok) {
      current = new Reachability(Reachability.Status.PRIVATE, failed);
    } else if (current.status() != Reachability.Status.UNKNOWN) {
      // keep the verdict, with the confidence that still backs it
      int backing = current.status() == Reachability.Status.PUBLIC ? ok : failed;
      current = backing == 0 ? Reachability.UNKNOWN : new Reachability(current.status(), backing);
    }
    return current;
  }

  /** Addresses some server failed to dial and none dialed. */
  synchronized Set<Multiaddr> undialable(long now) {
    Set<Multiaddr> failed = new LinkedHashSet<>();
    Set<Multiaddr> dialed = new LinkedHashSet<>();
    for (Answer a : answers.values()) {
      if (a.atMillis + ttlMillis > now) {
        (a.ok ? dialed : failed).addAll(a.asked);
      }
    }
    failed.removeAll(dialed);
    return failed;
  }
}
