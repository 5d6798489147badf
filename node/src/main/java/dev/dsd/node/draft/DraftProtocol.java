package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Error;
import dev.dsd.node.wire.MessageStream;

/** Constants and small builders of {@code /dsd/draft/1.0.0} (schema: {@code draft.proto}). */
public final class DraftProtocol {
  public static final String ID = "/dsd/draft/1.0.0";
  /**
   * Largest message: Drafts with k whole-vocabulary distributions at top_p 1 (32 drafts of a
   * 152k-id vocabulary as doubles are 39 MB); doubles so the entry's acceptance sees exactly the
   * distribution the draft sampled from.
   */
  public static final int MAX_FRAME_BYTES = 48 << 20;
  /** Session ids are chosen by entries; bounded so a peer cannot make us store megabytes of them. */
  public static final int MAX_SESSION_ID_CHARS = 128;
  /** Accepted updates one Propose may carry: more rounds than this without a Propose is not a real loop. */
  public static final int MAX_UPDATES = 1024;

  /** Frames of this protocol; a bad frame is answered BAD_REQUEST, an oversized one LIMIT. */
  static final MessageStream.Codec<DraftMessage> CODEC = new MessageStream.Codec<>(DraftMessage.parser(),
      MAX_FRAME_BYTES, (limit, message) -> error(limit ? Error.Code.LIMIT : Error.Code.BAD_REQUEST, "", 0, message));

  private DraftProtocol() {}

  static DraftMessage error(Error.Code code, String sessionId, long seq, String message) {
    return DraftMessage.newBuilder().setError(Error.newBuilder().setCode(code).setSessionId(sessionId).setSeq(seq)
        .setMessage(message)).build();
  }
}
