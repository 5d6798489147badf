package dev.dsd.node.generate;

/**
 * What chain drafters ({@link Drafter}) and tree drafters share: a drafter may fail in a way that
 * costs speed, not the generation (a draft node died), and then the loop goes on without it.
 */
public interface DraftSource extends AutoCloseable {

  /**
   * Whether {@code failure} of this drafter means it is gone (a draft node died) so the generation
   * may go on without speculation, rather than a refusal the caller caused, which must surface.
   */
  default boolean lost(RuntimeException failure) {
    return true;
  }

  @Override
  void close();

  /**
   * A lost drafter is closed and the loop goes on without speculation (returns null); a refusal the
   * caller caused is rethrown.
   */
  static <D extends DraftSource> D dropLost(D d, RuntimeException e) {
    if (!d.lost(e)) {
      throw e;
    }
    org.slf4j.LoggerFactory.getLogger(DraftSource.class).warn("{} failed, continuing without speculation: {}",
        d.getClass().getSimpleName(), e.getMessage());
    try {
      d.close();
    } catch (RuntimeException ignored) {
      // already failed; its owner (the caller's try-with-resources) closes it again harmlessly
    }
    return null;
  }
}
