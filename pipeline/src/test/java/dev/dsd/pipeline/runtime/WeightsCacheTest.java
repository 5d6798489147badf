package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.onnx.RunTensors;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The run-format weights cache: reused when valid, detected and rebuilt when corrupt or stale. */
class WeightsCacheTest {
  static final String ID = "0123456789abcdef0123456789abcdef";

  @TempDir Path tmp;
  Checkpoint ck;
  Path cache;
  float[] expected;

  @BeforeEach
  void setUp() throws Exception {
    ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(64).intermediate(128).heads(4).kvHeads(2).seed(3)
        .writeTo(tmp.resolve("m")));
    cache = tmp.resolve("cache");
    expected = forward(ID);
  }

  float[] forward(String id) {
    try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, 2, options(), id)) {
      return r.forwardTokens(r.openSession("s", "t", 16), new int[] {1, 2, 3});
    }
  }

  RunnerOptions options() {
    return RunnerOptions.defaults().withThreads(1).withWeights(WeightFormat.Q4).withCacheDir(cache);
  }

  Path file() {
    return cache.resolve(OrtWeights.fileName(new ShardWeightsFile.Key(ID, 0, 2, WeightFormat.Q4)));
  }

  ShardWeightsFile.Key key() {
    return new ShardWeightsFile.Key(ID, 0, 2, WeightFormat.Q4);
  }

  RunTensors run() {
    return RunTensors.forShard(ck.config(), 0, 2, WeightFormat.Q4);
  }

  @Test
  void aValidFileIsReusedNotRewritten() throws Exception {
    Path f = file();
    assertTrue(Files.exists(f));
    FileTime before = FileTime.fromMillis(1000);
    Files.setLastModifiedTime(f, before);
    assertArrayEquals(expected, forward(ID));
    assertEquals(before, Files.getLastModifiedTime(f), "a valid cache file must not be rewritten");
    try (Stream<Path> files = Files.list(cache)) {
      assertEquals(1, files.count(), "no temporary files left behind");
    }
  }

  static Stream<Arguments> corruptions() {
    return Stream.of(
        Arguments.of("a flipped data byte", (Consumer<Path>) f -> flip(f, size(f) / 2), "checksum"),
        Arguments.of("a flipped checksum byte", (Consumer<Path>) f -> flip(f, size(f) - 12), "checksum"),
        Arguments.of("truncated", (Consumer<Path>) f -> truncate(f, size(f) - 100), "size"),
        Arguments.of("truncated to nothing", (Consumer<Path>) f -> truncate(f, 0), "truncated"),
        Arguments.of("bad magic", (Consumer<Path>) f -> flip(f, 0), "magic"),
        Arguments.of("garbage header", (Consumer<Path>) f -> flip(f, 17), "JSON"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("corruptions")
  void aCorruptFileIsDetectedAndRebuilt(String what, Consumer<Path> damage, String reason) throws Exception {
    damage.accept(file());
    ShardWeightsFile.StaleException e = assertThrows(ShardWeightsFile.StaleException.class,
        () -> ShardWeightsFile.open(file(), key(), run()));
    assertTrue(e.getMessage().contains(reason), what + ": " + e.getMessage());
    assertArrayEquals(expected, forward(ID), what + ": the rebuilt file gives the original numbers");
    ShardWeightsFile.open(file(), key(), run()); // valid again
  }

  @Test
  void aFileOfAnotherModelOrFormatIsStale() throws Exception {
    Path other = cache.resolve("renamed.dsdw");
    Files.copy(file(), other);
    var e = assertThrows(ShardWeightsFile.StaleException.class,
        () -> ShardWeightsFile.open(other, new ShardWeightsFile.Key("another-model", 0, 2, WeightFormat.Q4), run()));
    assertTrue(e.getMessage().contains("made for"), e.getMessage());
    assertThrows(ShardWeightsFile.StaleException.class,
        () -> ShardWeightsFile.open(other, new ShardWeightsFile.Key(ID, 0, 1, WeightFormat.Q4), run()));
    // a file copied over the q8 name is refused by its header, not trusted for its name
    Path q8 = cache.resolve(OrtWeights.fileName(new ShardWeightsFile.Key(ID, 0, 2, WeightFormat.Q8)));
    Files.copy(file(), q8);
    try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, 2, options().withWeights(WeightFormat.Q8), ID)) {
      r.forwardTokens(r.openSession("s", "t", 16), new int[] {1, 2, 3});
    }
    ShardWeightsFile.open(q8, new ShardWeightsFile.Key(ID, 0, 2, WeightFormat.Q8),
        RunTensors.forShard(ck.config(), 0, 2, WeightFormat.Q8));
  }

  static long size(Path f) {
    try {
      return Files.size(f);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  static void flip(Path f, long pos) {
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.seek(pos);
      int b = raf.read();
      raf.seek(pos);
      raf.write(b ^ 0x5a);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  static void truncate(Path f, long len) {
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(len);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }
}
