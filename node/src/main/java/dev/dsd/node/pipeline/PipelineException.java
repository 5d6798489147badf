package dev.dsd.node.pipeline;

import dev.dsd.node.generate.GenerationException;
import dev.dsd.p2p.core.PeerId;

/** A pipeline round or session failed; {@link #failedPeer} names the stage at fault when known. */
public final class PipelineException extends GenerationException {
  private final String code;
  private final transient PeerId failedPeer;

  public PipelineException(String code, String message, PeerId failedPeer) {
    super(message);
    this.code = code;
    this.failedPeer = failedPeer;
  }

  public String code() {
    return code;
  }

  public PeerId failedPeer() {
    return failedPeer;
  }
}
