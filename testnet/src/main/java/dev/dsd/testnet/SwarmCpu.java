package dev.dsd.testnet;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * CPU time (user + system) of a testnet's processes, from Linux's {@code /proc/PID/stat}: what a
 * load level cost the swarm per token, a figure that other work on the same cores changes far less
 * than tokens per second.
 */
final class SwarmCpu {
  /** Jiffies per second: USER_HZ is 100 on every Linux architecture dsd runs on. */
  static final long TICKS_PER_SECOND = 100;

  private SwarmCpu() {}

  /**
   * Nanoseconds of CPU per process named in {@code pids} ("pid name" per line, as up.sh writes it);
   * processes that are gone are left out. Empty for a null file.
   */
  static Map<String, Long> read(Path pids) throws IOException {
    Map<String, Long> out = new LinkedHashMap<>();
    if (pids == null) {
      return out;
    }
    for (String line : Files.readAllLines(pids)) {
      String[] f = line.trim().split("\\s+");
      if (f.length < 2) {
        continue;
      }
      Path stat = Path.of("/proc", f[0], "stat");
      String text;
      try {
        text = Files.readString(stat);
      } catch (IOException e) {
        continue; // exited
      }
      // the command name (field 2) may hold spaces; fields after its closing parenthesis are fixed
      String[] rest = text.substring(text.lastIndexOf(')') + 2).split(" ");
      long ticks = Long.parseLong(rest[11]) + Long.parseLong(rest[12]); // utime, stime (fields 14, 15)
      out.put(f[1], ticks * 1_000_000_000L / TICKS_PER_SECOND);
    }
    return out;
  }
}
