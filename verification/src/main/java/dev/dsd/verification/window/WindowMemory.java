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
  private final Map<String, AdaptiveWindow> byRoute = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, AdaptiveWindow> eldest) {
      return size() > MAX_ROUTES;
    }
  };

  public WindowMemory(int kMin, int kMax) {
    new AdaptiveWindow(kMin, kMax); // checks the bounds once, here
    this.kMin = kMin;
    this.kMax = kMax;
  }

  /** A window for a request on {@code route}: the route's last estimates, or a fresh one. */
  public synchronized AdaptiveWindow start(String route) {
    AdaptiveWindow w = byRoute.get(route);
    return w == null ? new AdaptiveWindow(kMin, kMax) : w.continuing();
  }

  /** Keeps what {@code window} learned for the next request on {@code route}. */
  public synchronized void finish(String route, AdaptiveWindow window) {
    byRoute.put(route, window.continuing());
  }

  public synchronized int size() {
    return byRoute.size();
  }
}
