package dev.dsd.node.generate;

import java.util.List;

/**
 * Holds back just enough streamed text to recognise a stop string that spans pieces, and cuts the
 * output before the first stop string found.
 */
final class StopMatcher {
  private final List<String> stops;
  private final int holdBack;
  private final StringBuilder all = new StringBuilder();
  private int released;
  private boolean stopped;

  StopMatcher(List<String> stops) {
    this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
    this.holdBack = this.stops.stream().mapToInt(String::length).max().orElse(1) - 1;
  }

  /** Adds new text; returns what can be shown now. */
  String feed(String piece) {
    if (stopped) {
      return "";
    }
    all.append(piece);
    int cut = firstStop();
    if (cut >= 0) {
      stopped = true;
      all.setLength(cut);
      return release(cut);
    }
    return release(Math.max(released, all.length() - holdBack));
  }

  /** Releases what was held back once generation ends without a stop string. */
  String finish() {
    return stopped ? "" : release(all.length());
  }

  private String release(int upTo) {
    String out = all.substring(released, upTo);
    released = upTo;
    return out;
  }

  private int firstStop() {
    int best = -1;
    for (String s : stops) {
      int i = all.indexOf(s, Math.max(0, released - s.length()));
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
      }
    }
    return best;
  }

  boolean stopped() {
    return stopped;
  }

  String text() {
    return all.toString();
  }
}
