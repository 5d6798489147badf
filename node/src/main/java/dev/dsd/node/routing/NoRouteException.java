package dev.dsd.node.routing;

import dev.dsd.node.generate.GenerationException;

/** No chain of reachable peers covers all layers of the model; the message names the gap. */
public final class NoRouteException extends GenerationException {
  public NoRouteException(String message) {
    super(message);
  }
}
