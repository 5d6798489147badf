package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.RunTensors;
import dev.dsd.pipeline.onnx.proto.Onnx.ModelProto;
import dev.dsd.pipeline.onnx.proto.Onnx.StringStringEntryProto;
import dev.dsd.pipeline.onnx.proto.Onnx.TensorProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The weights of layers {@code [from, to)} in their run format, as one {@link ShardWeightsFile} that
 * ONNX Runtime loads as the graph's external data. With a cache directory the file is kept, keyed by
 * model id, layer range and format, and reused after checking it; without one it is a temporary file
 * deleted at close. Shared by the per-session and the batched runner.
 */
final class OrtWeights implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(OrtWeights.class);
  /** Where external data is resolved from when a graph is loaded from bytes (ORT session config key). */
  static final String FOLDER_KEY = "session.model_external_initializers_file_folder_path";
  /** How often the weights file is paged out while ORT creates a session (prepacking reads it). */
  static final long PAGE_OUT_EVERY_MS = 50;

  private final OrtEnvironment env;
  private final Path file;
  private final boolean temporary;
  private final Map<String, ShardWeightsFile.Entry> table;
  private final RunTensors run;
  private final List<OnnxTensor> tensors = new ArrayList<>();

  private OrtWeights(OrtEnvironment env, Path file, boolean temporary, Map<String, ShardWeightsFile.Entry> table,
      RunTensors run) {
    this.env = env;
    this.file = file;
    this.temporary = temporary;
    this.table = table;
    this.run = run;
  }

  /**
   * Shape-checks every tensor of the range, then finds a valid cached file or writes one. A mismatch
   * names the tensor; a format the checkpoint cannot take says why in one line.
   */
  static OrtWeights load(OrtEnvironment env, ModelConfig config, WeightSource source, int from, int to,
      RunnerOptions options, String modelId) {
    for (Map.Entry<String, long[]> e : TensorNames.forShard(config, from, to).entrySet()) {
      long[] actual = source.shape(e.getKey());
      if (!Arrays.equals(actual, e.getValue())) {
        throw new ModelFormatException("tensor " + e.getKey() + " has shape " + Arrays.toString(actual)
            + " but the config implies " + Arrays.toString(e.getValue()));
      }
    }
    WeightFormat format = options.weights();
    RunTensors run = RunTensors.forShard(config, from, to, format);
    ShardWeightsFile.Key key = new ShardWeightsFile.Key(modelId, from, to, format);
    long t0 = System.nanoTime();
    try {
      if (modelId == null || options.cacheDir() == null) {
        Path tmp = Files.createTempFile("dsd-weights-", ".bin");
        Files.delete(tmp); // written under a temporary name and moved here
        var table = ShardWeightsFile.write(tmp, key, run, config, source);
        log.info("weights written layers=[{},{}) format={} bytes={} file={} ms={} (temporary)", from, to, format.id(),
            run.bytes(), tmp, (System.nanoTime() - t0) / 1_000_000);
        return new OrtWeights(env, tmp, true, table, run);
      }
      Files.createDirectories(options.cacheDir());
      Path file = options.cacheDir().resolve(fileName(key));
      String reason = "absent";
      if (Files.exists(file)) {
        try {
          var table = ShardWeightsFile.open(file, key, run);
          log.info("weights cache hit layers=[{},{}) format={} bytes={} file={} ms={}", from, to, format.id(), run.bytes(),
              file, (System.nanoTime() - t0) / 1_000_000);
          return new OrtWeights(env, file, false, table, run);
        } catch (ShardWeightsFile.StaleException e) {
          reason = e.getMessage();
        }
      }
      var table = ShardWeightsFile.write(file, key, run, config, source);
      log.info("weights cache built layers=[{},{}) format={} bytes={} file={} reason=\"{}\" ms={}", from, to,
          format.id(), run.bytes(), file, reason, (System.nanoTime() - t0) / 1_000_000);
      return new OrtWeights(env, file, false, table, run);
    } catch (IOException e) {
      throw new ModelFormatException("cannot write the " + format.id() + " weights of layers [" + from + ", " + to
          + "): " + e.getMessage(), e);
    }
  }

  /** e.g. {@code shard-3f2a...-0-22-q4.dsdw}: readable, and unique per key. */
  static String fileName(ShardWeightsFile.Key key) {
    String id = key.modelId().length() > 24 ? key.modelId().substring(0, 24)
        : HexFormat.of().formatHex(key.modelId().getBytes(java.nio.charset.StandardCharsets.UTF_8));
    return "shard-" + id + "-" + key.from() + "-" + key.to() + "-" + key.format().id() + ".dsdw";
  }

  /** Bytes the run tensors take. */
  long bytes() {
    return run.bytes();
  }

  long bytesReadPerCall() {
    return run.bytesReadPerCall();
  }

  Path file() {
    return file;
  }

  /** A small constant tensor owned (and closed) with the weights. */
  OnnxTensor tensor(float[] data, long[] shape) throws OrtException {
    FloatBuffer buf = ByteBuffer.allocateDirect(data.length * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
    buf.put(data).rewind();
    OnnxTensor t = OnnxTensor.createTensor(env, buf, shape);
    tensors.add(t);
    return t;
  }

  /**
   * A session of {@code graph} (whose weights are declared with location {@code dsd-supplied}) over
   * this file, with the runners' common options.
   */
  OrtSession session(ModelProto graph, RunnerOptions options) throws OrtException {
    ModelProto.Builder m = graph.toBuilder();
    for (TensorProto.Builder t : m.getGraphBuilder().getInitializerBuilderList()) {
      if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) {
        continue;
      }
      ShardWeightsFile.Entry e = table.get(t.getName());
      if (e == null) {
        throw new IllegalStateException("graph wants " + t.getName() + ", which the weights file lacks");
      }
      t.clearExternalData()
          .addExternalData(entry("location", file.getFileName().toString()))
          .addExternalData(entry("offset", Long.toString(e.offset())))
          .addExternalData(entry("length", Long.toString(e.length())));
    }
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
      so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
      so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      if (options.intraOpThreads() > 0) {
        so.setIntraOpNumThreads(options.intraOpThreads());
      }
      so.addConfigEntry(FOLDER_KEY, file.toAbsolutePath().getParent().toString());
      if (options.ortProfile() != null) {
        so.enableProfiling(options.ortProfile().toString());
      }
      if (run.format() == WeightFormat.F16) {
        // folding Cast(f16 weight) would store every weight again in f32, which is what f16 avoids
        so.addConfigEntry("optimization.disable_specified_optimizers", "ConstantFolding");
      }
      OrtSession session;
      // paging out while ORT prepacks keeps the scales it has read from piling up until the end (the peak)
      try (MappedPages.Pager pager = MappedPages.pagerOf(file, PAGE_OUT_EVERY_MS)) {
        session = env.createSession(m.build().toByteArray(), so);
      }
      long rss0 = WeightsBenchmark.rss();
      long advised = MappedPages.pageOut(file);
      log.info("weights file paged out after prepacking file={} format={} mappedBytes={} rssMbBefore={} rssMbAfter={}"
          + " peakRssMb={}", file.getFileName(), run.format().id(), advised, rss0 >> 20, WeightsBenchmark.rss() >> 20,
          WeightsBenchmark.peakRss() >> 20);
      return session;
    }
  }

  private static StringStringEntryProto entry(String k, String v) {
    return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
  }

  @Override
  public void close() {
    tensors.forEach(OnnxTensor::close);
    if (temporary) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException e) {
        log.warn("cannot delete temporary weights file {}: {}", file, e.getMessage());
      }
    }
  }
}
