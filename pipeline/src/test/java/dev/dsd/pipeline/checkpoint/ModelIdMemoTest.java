package dev.dsd.pipeline.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A remembered model id is reused only while every file keeps its path, size, mtime and inode. */
class ModelIdMemoTest {
  static final String A = "a".repeat(64);
  static final String B = "b".repeat(64);

  @TempDir Path tmp;

  @Test
  void reusesTheIdUntilAFileChanges() throws Exception {
    Path f = Files.writeString(tmp.resolve("w.safetensors"), "weights");
    ModelIdMemo memo = new ModelIdMemo(tmp.resolve("ids"), 0);
    AtomicInteger hashed = new AtomicInteger();
    Supplier<String> hashA = () -> {
      hashed.incrementAndGet();
      return A;
    };
    assertEquals(A, memo.get(List.of(f), hashA));
    assertEquals(A, memo.get(List.of(f), hashA));
    assertEquals(1, hashed.get(), "second start reads the memo, not the files");

    Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() - 60_000));
    assertEquals(B, memo.get(List.of(f), () -> B), "a new mtime is a new key");
    Files.writeString(f, "weights, longer");
    assertEquals(A, memo.get(List.of(f), hashA), "a new size is a new key");
    assertEquals(2, hashed.get());
  }

  @Test
  void aCorruptMemoIsIgnoredAndRewritten() throws Exception {
    Path f = Files.writeString(tmp.resolve("w.safetensors"), "weights");
    Path ids = tmp.resolve("ids");
    ModelIdMemo memo = new ModelIdMemo(ids, 0);
    memo.get(List.of(f), () -> A);
    try (var s = Files.list(ids)) {
      Files.writeString(s.findFirst().orElseThrow(), "not an id\n");
    }
    assertEquals(B, memo.get(List.of(f), () -> B));
    assertEquals(B, memo.get(List.of(f), () -> A), "rewritten with the fresh id");
  }

  @Test
  void smallCheckpointsAreNotRemembered() throws Exception {
    Path f = Files.writeString(tmp.resolve("w.safetensors"), "weights");
    Path ids = tmp.resolve("ids");
    ModelIdMemo memo = new ModelIdMemo(ids, 1 << 20);
    memo.get(List.of(f), () -> A);
    assertEquals(B, memo.get(List.of(f), () -> B));
    assertEquals(false, Files.exists(ids));
  }
}
