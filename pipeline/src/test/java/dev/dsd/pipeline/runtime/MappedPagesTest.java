package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MappedPagesTest {
  private static final int BYTES = 8 << 20;

  @Test
  void pagingOutDropsAMappingsResidentPagesAndKeepsItsData(@TempDir Path dir) throws IOException {
    assumeTrue(Files.isReadable(Path.of("/proc/self/smaps")), "Linux only");
    Path file = dir.resolve("weights.dsdw");
    ByteBuffer data = ByteBuffer.allocate(BYTES);
    for (int i = 0; i < BYTES; i++) {
      data.put((byte) (i * 31));
    }
    data.flip();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
        StandardOpenOption.READ)) {
      while (data.hasRemaining()) {
        ch.write(data);
      }
      MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, BYTES);
      long sum = 0;
      for (int i = 0; i < BYTES; i += 4096) {
        sum += map.get(i); // fault every page in
      }
      long before = residentKb(file);
      assertTrue(before >= (BYTES >> 10) / 2, "pages resident before: " + before + " KiB");

      assertEquals(BYTES, MappedPages.pageOut(file));

      long after = residentKb(file);
      assertTrue(after < before / 4, "resident after paging out: " + after + " KiB of " + before);
      long again = 0;
      for (int i = 0; i < BYTES; i += 4096) {
        again += map.get(i);
      }
      assertEquals(sum, again, "data read back after paging out");
    }
  }

  @Test
  void aFileNobodyMapsIsNotAnError(@TempDir Path dir) {
    assertEquals(0, MappedPages.pageOut(dir.resolve("absent.dsdw")));
  }

  /** Rss of this process's mappings of {@code file}, from /proc/self/smaps. */
  private static long residentKb(Path file) throws IOException {
    String target = file.toAbsolutePath().normalize().toString();
    long kb = 0;
    boolean in = false;
    for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
      if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
        in = line.endsWith(target);
      } else if (in && line.startsWith("Rss:")) {
        kb += Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return kb;
  }
}
