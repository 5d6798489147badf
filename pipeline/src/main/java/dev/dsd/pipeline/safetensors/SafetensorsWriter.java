package dev.dsd.pipeline.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes standard {@code .safetensors} files (header padded with spaces to 8-byte alignment). */
public final class SafetensorsWriter {
  private record Tensor(long[] shape, float[] data) {}

  private final DType dtype;
  private final Map<String, Tensor> tensors = new LinkedHashMap<>();

  public SafetensorsWriter(DType dtype) {
    this.dtype = dtype;
  }

  public SafetensorsWriter add(String name, float[] data, long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    if (n != data.length) {
      throw new IllegalArgumentException(name + ": " + data.length + " values for shape of " + n);
    }
    tensors.put(name, new Tensor(shape.clone(), data));
    return this;
  }

  public void write(Path file) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode header = json.createObjectNode();
    header.putObject("__metadata__").put("format", "pt");
    long off = 0;
    for (var e : tensors.entrySet()) {
      ObjectNode t = header.putObject(e.getKey());
      t.put("dtype", dtype.name());
      var shape = t.putArray("shape");
      for (long d : e.getValue().shape()) {
        shape.add(d);
      }
      long len = (long) e.getValue().data().length * dtype.bytes;
      t.putArray("data_offsets").add(off).add(off + len);
      off += len;
    }
    byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
    int pad = (8 - h.length % 8) % 8;
    try (OutputStream out = Files.newOutputStream(file)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length + pad);
      out.write(len.array());
      out.write(h);
      out.write(" ".repeat(pad).getBytes(StandardCharsets.US_ASCII));
      for (Tensor t : tensors.values()) {
        ByteBuffer b = ByteBuffer.allocate(t.data().length * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : t.data()) {
          switch (dtype) {
            case F32 -> b.putFloat(f);
            case F16 -> b.putShort(Half.fromFloat(f));
            case BF16 -> b.putShort(Half.bf16FromFloat(f));
          }
        }
        out.write(b.array());
      }
    }
  }
}
