package dev.dsd.pipeline.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a {@code .safetensors} file whose tensors are produced chunk by chunk, so a checkpoint of
 * any size is written with a fixed amount of memory ({@link #CHUNK_ELEMENTS} floats). The header is
 * known from the shapes alone and goes first; the data follows in declaration order.
 */
public final class SafetensorsStreamWriter {
  /** Elements produced per call of the {@link Filler}. */
  public static final int CHUNK_ELEMENTS = 1 << 18;

  /** Produces elements {@code [offset, offset + n)} of a tensor (row-major) into {@code dst[0, n)}. */
  public interface Filler {
    void fill(String tensor, long offset, float[] dst, int n);
  }

  private final DType dtype;
  private final Map<String, long[]> shapes = new LinkedHashMap<>();

  public SafetensorsStreamWriter(DType dtype) {
    this.dtype = dtype;
  }

  public SafetensorsStreamWriter add(String name, long... shape) {
    shapes.put(name, shape.clone());
    return this;
  }

  /** Bytes the data part will take. */
  public long dataBytes() {
    long total = 0;
    for (long[] s : shapes.values()) {
      total += elements(s) * dtype.bytes;
    }
    return total;
  }

  static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public void write(Path file, Filler filler) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode header = json.createObjectNode();
    header.putObject("__metadata__").put("format", "pt");
    long off = 0;
    for (var e : shapes.entrySet()) {
      ObjectNode t = header.putObject(e.getKey());
      t.put("dtype", dtype.name());
      var shape = t.putArray("shape");
      for (long d : e.getValue()) {
        shape.add(d);
      }
      long len = elements(e.getValue()) * dtype.bytes;
      t.putArray("data_offsets").add(off).add(off + len);
      off += len;
    }
    byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
    int pad = (8 - h.length % 8) % 8;
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer head = ByteBuffer.allocate(8 + h.length + pad).order(ByteOrder.LITTLE_ENDIAN);
      head.putLong(h.length + pad).put(h).put(" ".repeat(pad).getBytes(StandardCharsets.US_ASCII)).flip();
      writeFully(out, head);
      float[] chunk = new float[CHUNK_ELEMENTS];
      short[] halves = new short[CHUNK_ELEMENTS];
      ByteBuffer bytes = ByteBuffer.allocateDirect(CHUNK_ELEMENTS * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN);
      for (var e : shapes.entrySet()) {
        long n = elements(e.getValue());
        for (long done = 0; done < n; ) {
          int c = (int) Math.min(CHUNK_ELEMENTS, n - done);
          filler.fill(e.getKey(), done, chunk, c);
          bytes.clear();
          // bulk puts: a per-element put on a direct buffer costs more than the conversion
          switch (dtype) {
            case F32 -> bytes.asFloatBuffer().put(chunk, 0, c);
            case F16 -> {
              for (int i = 0; i < c; i++) {
                halves[i] = Half.fromFloat(chunk[i]);
              }
              bytes.asShortBuffer().put(halves, 0, c);
            }
            case BF16 -> {
              for (int i = 0; i < c; i++) {
                halves[i] = Half.bf16FromFloat(chunk[i]);
              }
              bytes.asShortBuffer().put(halves, 0, c);
            }
          }
          bytes.limit(c * dtype.bytes);
          writeFully(out, bytes);
          done += c;
        }
      }
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }
}
