package dev.dsd.node.draft;

import dev.dsd.node.generate.GenerationException;
import dev.dsd.p2p.core.PeerId;

/**
 * A remote draft could not propose. {@link #draftNodeLost} tells the entry whether the draft node
 * itself is gone (unreachable, silent, stream closed, shutting down), in which case the generation
 * can go on without speculation, from a refusal of this request (bad request, limit), which the
 * entry caused and should not paper over.
 */
public final class DraftException extends GenerationException {
  /** How the draft failed: a wire {@code Error.Code} name, or one of the local codes below. */
  public static final String UNREACHABLE = "UNREACHABLE";
  public static final String TIMEOUT = "TIMEOUT";
  public static final String GONE = "GONE";
  public static final String BAD_REPLY = "BAD_REPLY";
  public static final String CLOSED = "CLOSED";
  public static final String INTERRUPTED = "INTERRUPTED";

  private final String code;
  private final PeerId peer;

  public DraftException(String code, String message, PeerId peer) {
    super("draft node " + peer + ": " + message);
    this.code = code;
    this.peer = peer;
  }

  public String code() {
    return code;
  }

  public PeerId peer() {
    return peer;
  }

  public boolean draftNodeLost() {
    return switch (code) {
      case UNREACHABLE, TIMEOUT, GONE, INTERRUPTED, "SHUTTING_DOWN", "INTERNAL" -> true;
      default -> false;
    };
  }
}
