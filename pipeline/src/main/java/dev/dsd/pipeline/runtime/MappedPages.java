package dev.dsd.pipeline.runtime;

import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gives back the resident pages of a file that ONNX Runtime keeps mapped after session creation.
 *
 * <p>ORT maps a shard's weights file and prepacks each MatMulNBits weight into its own buffer; the
 * packed 4/8-bit data is released, but the kernel keeps its {@code scales} input (it copies them into
 * the packed buffer and still declares the input unpacked), so the pages prepacking faulted in stay
 * resident: ~190 MB for an 8-layer 7B stage in q4, clean and never read again on x86 (the packed
 * buffer carries its own copy). {@code madvise(MADV_PAGEOUT)} on those mappings reclaims them: the
 * data stays valid (a later read faults the page back in from the file), so this is safe whatever a
 * kernel does, and it only moves RSS, never correctness.
 *
 * <p>Linux only (reads {@code /proc/self/maps}; MADV_PAGEOUT since 5.4); elsewhere, or when the call
 * fails, it does nothing and says so.
 */
final class MappedPages {
  private static final Logger log = LoggerFactory.getLogger(MappedPages.class);
  /** linux/mman.h: reclaim the given pages. */
  private static final int MADV_PAGEOUT = 21;

  private MappedPages() {}

  /** Libc's madvise, bound on first use. */
  private static final class Libc {
    static {
      Native.register("c");
    }

    static native int madvise(Pointer addr, NativeLong length, int advice);
  }

  /** A daemon thread paging out a file every period until closed. */
  static final class Pager implements AutoCloseable {
    private final Thread thread;
    private volatile boolean done;

    private Pager(Path file, long periodMs) {
      thread = new Thread(() -> {
        while (!done) {
          pageOut(file);
          try {
            Thread.sleep(periodMs);
          } catch (InterruptedException e) {
            return;
          }
        }
      }, "weights-pager");
      thread.setDaemon(true);
      thread.start();
    }

    @Override
    public void close() {
      done = true;
      thread.interrupt();
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Pages out {@code file} every {@code periodMs} until the returned pager is closed: while ONNX Runtime
   * creates a session it maps the file and prepacks weight after weight, and the pages it has read
   * would otherwise all stay resident until it returns, on top of the packed copies.
   */
  static Pager pagerOf(Path file, long periodMs) {
    return new Pager(file, periodMs);
  }

  /**
   * Pages out every mapping of {@code file} in this process; returns the bytes of address space
   * advised (0 when there is none or the platform cannot).
   */
  static long pageOut(Path file) {
    Path maps = Path.of("/proc/self/maps");
    if (!Files.isReadable(maps)) {
      return 0;
    }
    String target = file.toAbsolutePath().normalize().toString();
    List<String> lines;
    try {
      lines = Files.readAllLines(maps);
    } catch (IOException e) {
      log.debug("cannot read {}: {}", maps, e.getMessage());
      return 0;
    }
    long advised = 0;
    for (String line : lines) {
      // "start-end perms offset dev inode   path"
      String[] f = line.trim().split("\\s+", 6);
      if (f.length < 6 || !(f[5].equals(target) || f[5].equals(target + " (deleted)"))) {
        continue;
      }
      String[] range = f[0].split("-");
      long start = Long.parseUnsignedLong(range[0], 16);
      long end = Long.parseUnsignedLong(range[1], 16);
      try {
        if (Libc.madvise(new Pointer(start), new NativeLong(end - start), MADV_PAGEOUT) == 0) {
          advised += end - start;
        } else {
          log.debug("madvise(MADV_PAGEOUT) failed on {} errno={}", f[0], Native.getLastError());
        }
      } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
        log.info("cannot page out {}: {}", file, e.getMessage());
        return advised;
      }
    }
    return advised;
  }
}
