package dev.dsd.p2p.core;

/** A peer asked for more than a configured limit allows; the message quotes the value and the limit. */
public class LimitExceededException extends ProtocolViolationException {
  public LimitExceededException(String what, long value, long limit) {
    super(what + " " + value + " exceeds the limit of " + limit);
  }
}
