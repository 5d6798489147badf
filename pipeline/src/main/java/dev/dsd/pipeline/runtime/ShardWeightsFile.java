package dev.dsd.pipeline.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.model.WeightSource;
import dev.dsd.pipeline.onnx.RotaryTables;
import dev.dsd.pipeline.onnx.RunTensors;
import dev.dsd.pipeline.quant.BlockQuantizer;
import dev.dsd.pipeline.safetensors.Half;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * A shard's weights in run format ({@link RunTensors}), in one file that ONNX Runtime reads as the
 * graph's external data: it maps the file, prepacks what its kernels want and releases the rest, so
 * the weights never pass through the Java heap and are not held twice. The same file is the cache
 * that makes a restart skip quantization.
 *
 * <pre>
 *   "DSDWGT01" | u64 LE header length H | H bytes of JSON header | zero padding
 *   tensor data, each at an offset aligned to 64 KiB (so ORT can map it)      ... up to dataEnd
 *   u64 LE CRC-32C of bytes [0, dataEnd) | "DSDWEND1"
 *   header: {"version", "modelId", "from", "to", "format", "block", "dataEnd",
 *            "tensors": [{"name", "offset", "length"}]}
 * </pre>
 *
 * {@link #open} refuses (with the reason) a file whose magic, header, key (model id, layer range,
 * format, layout version), tensor table, size or checksum does not match; the caller rebuilds it.
 * Files are written under a temporary name and renamed into place, so a reader never sees half of one.
 */
final class ShardWeightsFile {
  static final byte[] MAGIC = "DSDWGT01".getBytes(StandardCharsets.US_ASCII);
  static final byte[] END = "DSDWEND1".getBytes(StandardCharsets.US_ASCII);
  /** Bumped whenever the layout or the quantizer changes, so older files are rebuilt. */
  static final int VERSION = 2; // 2: q/k/v and gate/up stacked
  static final long ALIGN = 64 << 10;
  /** Largest header accepted; a 7B shard's table is a few KiB. */
  static final long MAX_HEADER_BYTES = 16 << 20;
  private static final int CHUNK = 1 << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a file is for. A null model id never matches a file on disk (temporary files only). */
  record Key(String modelId, int from, int to, WeightFormat format) {}

  /** Where a tensor's bytes are in the file. */
  record Entry(long offset, long length) {}

  /** Thrown by {@link #open} for a file that must not be used; the message says why. */
  static final class StaleException extends Exception {
    StaleException(String reason) {
      super(reason);
    }
  }

  private ShardWeightsFile() {}

  /** Writes the file for {@code key} from the checkpoint, atomically replacing any file at {@code file}. */
  static Map<String, Entry> write(Path file, Key key, RunTensors run, ModelConfig config, WeightSource source)
      throws IOException {
    Map<String, Entry> table = new LinkedHashMap<>();
    // The header's size depends on the offsets, which depend on the header's size: two rounds settle it.
    long start = align(1 << 12);
    byte[] header;
    while (true) {
      table.clear();
      long off = start;
      for (RunTensors.Tensor t : run.tensors()) {
        table.put(t.name(), new Entry(off, t.bytes()));
        off = align(off + t.bytes());
      }
      header = header(key, table, off);
      if (16 + header.length <= start) {
        break;
      }
      start = align(16 + header.length);
    }
    long dataEnd = JSON.readTree(header).get("dataEnd").asLong();
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
        StandardOpenOption.READ)) {
      ByteBuffer head = ByteBuffer.allocate(16 + header.length).order(ByteOrder.LITTLE_ENDIAN);
      head.put(MAGIC).putLong(header.length).put(header).flip();
      writeFully(ch, head, 0);
      List<RunTensors.Tensor> ts = run.tensors();
      for (int i = 0; i < ts.size(); i++) {
        RunTensors.Tensor t = ts.get(i);
        switch (t.kind()) {
          case F32, F16 -> writeFloats(ch, t, table.get(t.name()).offset(), source);
          case Q_DATA -> {
            RunTensors.Tensor scales = ts.get(i + 1);
            writeQuantized(ch, t.format(), t, table.get(t.name()).offset(), table.get(scales.name()).offset(), source);
          }
          case Q_SCALES -> { } // written with its data
          case ROPE_COS, ROPE_SIN -> {
            float[] v = RotaryTables.table(config, t.kind() == RunTensors.Kind.ROPE_SIN);
            ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(v);
            writeFully(ch, b, table.get(t.name()).offset());
          }
        }
      }
      if (ch.size() < dataEnd) { // the last tensor's alignment padding
        writeFully(ch, ByteBuffer.allocate(1), dataEnd - 1);
      }
      ByteBuffer tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      tail.putLong(crc(ch, dataEnd)).put(END).flip();
      writeFully(ch, tail, dataEnd);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return table;
  }

  /** The tensor table of a valid file for {@code key}, or {@link StaleException} saying why it is not. */
  static Map<String, Entry> open(Path file, Key key, RunTensors run) throws StaleException, IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 32) {
        throw new StaleException("truncated: " + size + " bytes");
      }
      ByteBuffer pre = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, pre, 0);
      byte[] magic = new byte[8];
      pre.get(magic);
      if (!java.util.Arrays.equals(magic, MAGIC)) {
        throw new StaleException("not a dsd weights file (bad magic)");
      }
      long h = pre.getLong();
      if (h < 2 || h > MAX_HEADER_BYTES || 16 + h > size) {
        throw new StaleException("header length " + h + " does not fit the " + size + "-byte file");
      }
      ByteBuffer hb = ByteBuffer.allocate((int) h);
      readFully(ch, hb, 16);
      JsonNode hdr;
      try {
        hdr = JSON.readTree(hb.array());
      } catch (IOException e) {
        throw new StaleException("header is not JSON: " + e.getMessage());
      }
      if (hdr == null || hdr.path("version").asInt() != VERSION) {
        throw new StaleException("layout version " + (hdr == null ? "?" : hdr.path("version")) + ", expected " + VERSION);
      }
      String want = key.modelId() + " [" + key.from() + ", " + key.to() + ") " + key.format().id();
      String got = hdr.path("modelId").asText() + " [" + hdr.path("from").asInt() + ", " + hdr.path("to").asInt() + ") "
          + hdr.path("format").asText();
      if (key.modelId() == null || !want.equals(got) || hdr.path("block").asInt() != BlockQuantizer.BLOCK) {
        throw new StaleException("made for " + got + ", not " + want);
      }
      long dataEnd = hdr.path("dataEnd").asLong(-1);
      if (dataEnd + 16 != size) {
        throw new StaleException("size " + size + " bytes, the header says " + (dataEnd + 16) + " (truncated or padded)");
      }
      Map<String, Entry> table = new LinkedHashMap<>();
      for (JsonNode t : hdr.path("tensors")) {
        table.put(t.path("name").asText(), new Entry(t.path("offset").asLong(-1), t.path("length").asLong(-1)));
      }
      List<RunTensors.Tensor> ts = run.tensors();
      if (table.size() != ts.size()) {
        throw new StaleException(table.size() + " tensors, the shard needs " + ts.size());
      }
      for (RunTensors.Tensor t : ts) {
        Entry e = table.get(t.name());
        if (e == null || e.length() != t.bytes() || e.offset() < 16 + h || e.offset() % ALIGN != 0
            || e.offset() + e.length() > dataEnd) {
          throw new StaleException("tensor " + t.name() + " is missing or misplaced in the table");
        }
      }
      ByteBuffer tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, tail, dataEnd);
      long stored = tail.getLong();
      byte[] end = new byte[8];
      tail.get(end);
      if (!java.util.Arrays.equals(end, END)) {
        throw new StaleException("no end marker (truncated or overwritten)");
      }
      long actual = crc(ch, dataEnd);
      if (actual != stored) {
        throw new StaleException("checksum " + Long.toHexString(actual) + " != stored " + Long.toHexString(stored));
      }
      return table;
    }
  }

  private static byte[] header(Key key, Map<String, Entry> table, long dataEnd) {
    ObjectNode h = JSON.createObjectNode();
    h.put("version", VERSION).put("modelId", String.valueOf(key.modelId())).put("from", key.from()).put("to", key.to())
        .put("format", key.format().id()).put("block", BlockQuantizer.BLOCK).put("dataEnd", dataEnd);
    ArrayNode ts = h.putArray("tensors");
    table.forEach((name, e) -> ts.addObject().put("name", name).put("offset", e.offset()).put("length", e.length()));
    return h.toString().getBytes(StandardCharsets.UTF_8);
  }

  private static void writeFloats(FileChannel ch, RunTensors.Tensor t, long pos, WeightSource source) throws IOException {
    long n = t.rows() * t.cols();
    boolean half = t.kind() == RunTensors.Kind.F16;
    float[] buf = new float[(int) Math.min(n, CHUNK)];
    ByteBuffer out = ByteBuffer.allocateDirect(buf.length * (half ? 2 : 4)).order(ByteOrder.LITTLE_ENDIAN);
    for (long done = 0; done < n; ) {
      int c = (int) Math.min(buf.length, n - done);
      read(source, t, done, buf, c);
      out.clear();
      if (half) {
        for (int i = 0; i < c; i++) {
          out.putShort(Half.fromFloat(buf[i]));
        }
      } else {
        out.asFloatBuffer().put(buf, 0, c);
        out.position(c * 4);
      }
      out.flip();
      writeFully(ch, out, pos);
      pos += out.limit();
      done += c;
    }
  }

  private static void writeQuantized(FileChannel ch, WeightFormat f, RunTensors.Tensor t, long dataPos, long scalePos,
      WeightSource source) throws IOException {
    int k = (int) t.cols();
    int rowsPerChunk = Math.max(1, CHUNK / k);
    float[] buf = new float[rowsPerChunk * k];
    int blocksPerRow = k / BlockQuantizer.BLOCK;
    ByteBuffer data = ByteBuffer.allocateDirect(rowsPerChunk * blocksPerRow * BlockQuantizer.blobBytes(f));
    ByteBuffer scales = ByteBuffer.allocateDirect(rowsPerChunk * blocksPerRow * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (long row = 0; row < t.rows(); ) {
      int r = (int) Math.min(rowsPerChunk, t.rows() - row);
      read(source, t, row * k, buf, r * k);
      data.clear();
      scales.clear();
      FloatBuffer sv = scales.asFloatBuffer();
      BlockQuantizer.quantize(f, buf, r, k, data, sv);
      data.flip();
      scales.limit(sv.position() * 4);
      dataPos += writeFully(ch, data, dataPos);
      scalePos += writeFully(ch, scales, scalePos);
      row += r;
    }
  }

  /**
   * Elements {@code [offset, offset + n)} of a run tensor whose sources are stacked along their first
   * dimension (fused q/k/v, gate/up), as F32 into {@code dst[0, n)}.
   */
  private static void read(WeightSource source, RunTensors.Tensor t, long offset, float[] dst, int n) {
    float[] part = null;
    int done = 0;
    long partStart = 0;
    for (String name : t.sources()) {
      long size = java.util.Arrays.stream(source.shape(name)).reduce(1, (a, b) -> a * b);
      long from = Math.max(offset + done, partStart);
      long to = Math.min(offset + n, partStart + size);
      if (from < to) {
        int c = (int) (to - from);
        if (done == 0 && c == n) {
          source.read(name, from - partStart, dst, c);
          return;
        }
        if (part == null || part.length < c) {
          part = new float[c];
        }
        source.read(name, from - partStart, part, c);
        System.arraycopy(part, 0, dst, done, c);
        done += c;
      }
      partStart += size;
    }
    if (done != n) {
      throw new IllegalStateException("tensor " + t.name() + " has fewer than " + (offset + n) + " elements");
    }
  }

  private static long crc(FileChannel ch, long end) throws IOException {
    CRC32C crc = new CRC32C();
    ByteBuffer b = ByteBuffer.allocateDirect(8 << 20);
    for (long pos = 0; pos < end; ) {
      b.clear();
      b.limit((int) Math.min(b.capacity(), end - pos));
      int r = ch.read(b, pos);
      if (r < 0) {
        throw new IOException("unexpected end of file at " + pos);
      }
      b.flip();
      crc.update(b);
      pos += r;
    }
    return crc.getValue();
  }

  static long align(long v) {
    return (v + ALIGN - 1) / ALIGN * ALIGN;
  }

  private static int writeFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    int n = 0;
    while (b.hasRemaining()) {
      n += ch.write(b, pos + n);
    }
    return n;
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    while (b.hasRemaining()) {
      if (ch.read(b, pos + b.position()) < 0) {
        throw new IOException("unexpected end of file");
      }
    }
    b.flip();
  }
}
