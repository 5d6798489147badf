package dev.dsd.node.pipeline;

import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.p2p.core.PeerId;
import com.google.protobuf.ByteString;

/** Constants and small builders of {@code /dsd/pipeline/1.0.0} (schema: {@code pipeline.proto}). */
public final class PipelineProtocol {
  public static final String ID = "/dsd/pipeline/1.0.0";
  /** Largest message: a 4096-token prompt's F32 hidden states at width 1024 fit with room. */
  public static final int MAX_FRAME_BYTES = 24 << 20;
  /** Session ids are chosen by entries; bounded so a peer cannot make us store megabytes of them. */
  public static final int MAX_SESSION_ID_CHARS = 128;

  /** Frames of this protocol; a bad frame is answered BAD_REQUEST, an oversized one LIMIT. */
  public static final dev.dsd.node.wire.MessageStream.Codec<PipelineMessage> CODEC = new dev.dsd.node.wire.MessageStream.Codec<>(
      PipelineMessage.parser(), MAX_FRAME_BYTES,
      (limit, message) -> error(limit ? Error.Code.LIMIT : Error.Code.BAD_REQUEST, "", message));

  private PipelineProtocol() {}

  public static PipelineMessage error(Error.Code code, String sessionId, String message) {
    return PipelineMessage.newBuilder().setError(Error.newBuilder().setCode(code).setSessionId(sessionId)
        .setMessage(message)).build();
  }

  public static PipelineMessage error(Error.Code code, String sessionId, String message, PeerId peer, long round) {
    return PipelineMessage.newBuilder().setError(Error.newBuilder().setCode(code).setSessionId(sessionId)
        .setMessage(message).setPeerId(ByteString.copyFrom(peer.toBytes())).setRound(round)).build();
  }

  public static boolean causedBy(Throwable t, Class<? extends Throwable> type) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (type.isInstance(c)) {
        return true;
      }
    }
    return false;
  }

  /** The innermost cause's message: what a neighbour is told about a failure. */
  public static String rootMessage(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
  }
}
