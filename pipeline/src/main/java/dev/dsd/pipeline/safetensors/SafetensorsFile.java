package dev.dsd.pipeline.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.pipeline.model.ModelFormatException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped read-only.
 *
 * <pre>
 *   u64 little-endian N | N bytes of JSON header | tensor data
 *   header: {"name": {"dtype": "F16", "shape": [r, c], "data_offsets": [begin, end]}, "__metadata__": {...}}
 * </pre>
 *
 * Offsets are relative to the end of the header. Every entry is checked at open (dtype known, size =
 * product(shape) x element size, inside the file), so a truncated file is refused before any weight
 * is used. Tensor bytes are only touched by {@link #read}; files over 2 GiB are mapped in windows.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** Largest header accepted; real checkpoints use well under 1 MiB. */
  public static final long MAX_HEADER_BYTES = 100L << 20;
  private static final long MAP_WINDOW = 1L << 30;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A tensor's place in the file. */
  public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
    public long elements() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }
  }

  private final Path path;
  private final FileChannel channel;
  private final long dataStart;
  private final Map<String, Entry> entries;

  private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, Entry> entries) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
    this.entries = entries;
  }

  public static SafetensorsFile open(Path path) {
    FileChannel ch = null;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
      long size = ch.size();
      if (size < 8) {
        throw new ModelFormatException(path + ": truncated: " + size + " bytes, no header length");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long headerLen = lenBuf.getLong(0);
      if (headerLen <= 1 || headerLen > MAX_HEADER_BYTES) {
        throw new ModelFormatException(path + ": header length " + headerLen
            + " is outside (1, " + MAX_HEADER_BYTES + "] bytes");
      }
      if (8 + headerLen > size) {
        throw new ModelFormatException(path + ": truncated: header of " + headerLen
            + " bytes runs past the end of the " + size + "-byte file");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLen);
      readFully(ch, header, 8);
      JsonNode root;
      try {
        root = JSON.readTree(new String(header.array(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new ModelFormatException(path + ": header is not valid JSON: " + e.getMessage(), e);
      }
      if (root == null || !root.isObject()) {
        throw new ModelFormatException(path + ": header is not a JSON object");
      }
      long dataStart = 8 + headerLen;
      long dataSize = size - dataStart;
      Map<String, Entry> entries = new LinkedHashMap<>();
      var it = root.fields();
      while (it.hasNext()) {
        var f = it.next();
        if (f.getKey().equals("__metadata__")) {
          continue;
        }
        entries.put(f.getKey(), entry(path, f.getKey(), f.getValue(), dataSize));
      }
      return new SafetensorsFile(path, ch, dataStart, Collections.unmodifiableMap(entries));
    } catch (IOException e) {
      closeQuietly(ch);
      throw new ModelFormatException(path + ": cannot read: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      closeQuietly(ch);
      throw e;
    }
  }

  private static Entry entry(Path path, String name, JsonNode e, long dataSize) {
    String where = path + ": tensor " + name;
    DType dtype;
    try {
      dtype = DType.valueOf(e.path("dtype").asText());
    } catch (IllegalArgumentException x) {
      throw new ModelFormatException(where + ": dtype " + e.path("dtype") + " is not supported (F32, F16, BF16)");
    }
    JsonNode shapeNode = e.get("shape");
    JsonNode off = e.get("data_offsets");
    if (shapeNode == null || !shapeNode.isArray() || off == null || !off.isArray() || off.size() != 2) {
      throw new ModelFormatException(where + ": entry needs shape and data_offsets [begin, end]");
    }
    long[] shape = new long[shapeNode.size()];
    long n = 1;
    for (int i = 0; i < shape.length; i++) {
      shape[i] = shapeNode.get(i).asLong(-1);
      if (shape[i] < 0) {
        throw new ModelFormatException(where + ": shape " + shapeNode + " has a negative dimension");
      }
      n = Math.multiplyExact(n, shape[i]);
    }
    long begin = off.get(0).asLong(-1);
    long end = off.get(1).asLong(-1);
    if (begin < 0 || end < begin) {
      throw new ModelFormatException(where + ": data_offsets " + off + " are invalid");
    }
    if (end - begin != n * dtype.bytes) {
      throw new ModelFormatException(where + ": data_offsets " + off + " hold " + (end - begin)
          + " bytes but shape " + shapeNode + " of " + dtype + " needs " + n * dtype.bytes);
    }
    if (end > dataSize) {
      throw new ModelFormatException(where + ": truncated file: data ends at byte " + end
          + " but only " + dataSize + " bytes of data follow the header");
    }
    return new Entry(name, dtype, shape, begin, end);
  }

  public Path path() {
    return path;
  }

  public Map<String, Entry> entries() {
    return entries;
  }

  /** Reads one tensor as F32. Only this tensor's pages are touched. */
  public float[] read(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new ModelFormatException(path + ": tensor " + name + " is missing");
    }
    long n = e.elements();
    if (n > Integer.MAX_VALUE - 8) {
      throw new ModelFormatException(path + ": tensor " + name + " has " + n + " elements, more than one array holds");
    }
    float[] out = new float[(int) n];
    long pos = dataStart + e.begin();
    int done = 0;
    try {
      while (done < n) {
        int chunk = (int) Math.min(n - done, MAP_WINDOW / e.dtype().bytes);
        MappedByteBuffer map = channel.map(FileChannel.MapMode.READ_ONLY, pos, (long) chunk * e.dtype().bytes);
        map.order(ByteOrder.LITTLE_ENDIAN);
        float[] part = done == 0 && chunk == n ? out : new float[chunk];
        e.dtype().toFloats(map, part, chunk);
        if (part != out) {
          System.arraycopy(part, 0, out, done, chunk);
        }
        done += chunk;
        pos += (long) chunk * e.dtype().bytes;
      }
    } catch (IOException x) {
      throw new ModelFormatException(path + ": cannot read tensor " + name + ": " + x.getMessage(), x);
    }
    return out;
  }

  /**
   * Reads elements {@code [offset, offset + n)} of a tensor as F32 into {@code dst}. Read through the
   * channel, not a mapping: a mapping lives until the garbage collector finds it, and every page it
   * touched counts as this process's resident memory meanwhile, so streaming a whole checkpoint
   * through mappings would make the process as large as the checkpoint.
   */
  public void readRange(String name, long offset, float[] dst, int n) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new ModelFormatException(path + ": tensor " + name + " is missing");
    }
    if (offset < 0 || n < 0 || offset + n > e.elements()) {
      throw new IllegalArgumentException(name + ": elements [" + offset + ", " + (offset + n) + ") outside [0, "
          + e.elements() + ")");
    }
    try {
      ByteBuffer buf = ByteBuffer.allocate(n * e.dtype().bytes).order(ByteOrder.LITTLE_ENDIAN);
      readFully(channel, buf, dataStart + e.begin() + offset * e.dtype().bytes);
      buf.flip();
      e.dtype().toFloats(buf, dst, n);
    } catch (IOException x) {
      throw new ModelFormatException(path + ": cannot read tensor " + name + ": " + x.getMessage(), x);
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int r = ch.read(buf, pos + buf.position());
      if (r < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  private static void closeQuietly(FileChannel ch) {
    if (ch != null) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // already failing with a better message
      }
    }
  }

  @Override
  public void close() {
    closeQuietly(channel);
  }
}
