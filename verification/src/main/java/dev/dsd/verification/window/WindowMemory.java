package dev.dsd.verification.window;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What adaptive windows learned, kept per route between requests: the next request on the same
 * stages and drafter starts from the last one's acceptance, draft, verify and round-trip estimates
 * instead of warming up again. The least recently used routes are forgotten beyond
 * {@link #MAX_ROUTES}.
 */
public final class WindowMemory {
  /** Routes remembered at most. */
  public static final int MAX_ROUTES = 256;

  private final int kMin;
  private final int kMax;
  private final java.util.function.Supplier<AcceptanceHazard> hazard;
  private AcceptanceHazard loaded;
  private final Map<String, AdaptiveWindow> byRoute = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, AdaptiveWindow> eldest) {
      return size() > MAX_ROUTES;
    }
  };

  public WindowMemory(int kMin, int kMax) {
    this(kMin, kMax, (AcceptanceHazard) null);
  }

  /** Windows whose yield comes from {@code hazard} (null: the analytic controller). */
  public WindowMemory(int kMin, int kMax, AcceptanceHazard hazard) {
    this(kMin, kMax, () -> hazard);
  }

  /**
   * Windows of the learned controller with the shipped model, read at the first request that asks
   * for one: a node that never serves {@code --spec learned} never reads it.
   */
  public static WindowMemory learned(int kMin, int kMax) {
    return new WindowMemory(kMin, kMax, AcceptanceHazard::shipped);
  }

  private WindowMemory(int kMin, int kMax, java.util.function.Supplier<AcceptanceHazard> hazard) {
    new AdaptiveWindow(kMin, kMax); // checks the bounds once, here
    this.kMin = kMin;
    this.kMax = kMax;
    this.hazard = hazard;
  }

  /** A window for a request on {@code route}: the route's last estimates, or a fresh one. */
  public synchronized AdaptiveWindow start(String route) {
    AdaptiveWindow w = byRoute.get(route);
    if (w != null) {
      return w.continuing();
    }
    if (loaded == null) {
      loaded = hazard.get();
    }
    return new AdaptiveWindow(kMin, kMax, loaded);
  }

  /** Keeps what {@code window} learned for the next request on {@code route}. */
  public synchronized void finish(String route, AdaptiveWindow window) {
    byRoute.put(route, window.continuing());
  }

  public synchronized int size() {
    return byRoute.size();
  }
}
