package dev.dsd.node.pipeline;

import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One debug line per event in a round's life, to see whether pipelined rounds overlap in the links
 * and stages: the entry drafts and sends a round, each stage receives it, starts and ends its call
 * and forwards the output, the entry gets the answer and decides. Enable with the logger
 * {@code dev.dsd.node.pipeline.Timeline} at debug; {@code testnet/timeline.py} turns the lines into a
 * table per round.
 *
 * <pre>
 *   timeline session=SSSSSSSS round=R at=EPOCH_MS.mmm where=entry|LAYERS event=NAME [detail]
 * </pre>
 *
 * {@code at} is wall-clock time with microseconds, so the lines of several processes on one
 * machine line up; {@code round} is the wire round number (the entry's loop logs its own handle as
 * {@code round=h<handle>} before the send that gives it a wire number).
 */
public final class Timeline {
  private static final Logger log = LoggerFactory.getLogger(Timeline.class);

  private Timeline() {}

  public static boolean on() {
    return log.isDebugEnabled();
  }

  /** Logs one event now; {@code detail} may be empty. */
  public static void event(String session, String round, String where, String event, String detail) {
    if (!log.isDebugEnabled()) {
      return;
    }
    Instant now = Instant.now();
    double at = now.getEpochSecond() * 1000.0 + now.getNano() / 1e6;
    log.debug("timeline session={} round={} at={} where={} event={}{}", shortId(session), round,
        String.format("%.3f", at), where, event, detail.isEmpty() ? "" : " " + detail);
  }

  public static void event(String session, long round, String where, String event, String detail) {
    if (log.isDebugEnabled()) {
      event(session, Long.toString(round), where, event, detail);
    }
  }

  private static String shortId(String session) {
    return session == null ? "-" : session.length() <= 8 ? session : session.substring(0, 8);
  }
}
