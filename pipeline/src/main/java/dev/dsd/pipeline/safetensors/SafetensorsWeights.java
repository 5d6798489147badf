package dev.dsd.pipeline.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights of a model directory: {@code model.safetensors}, or the files named by a sharded
 * {@code model.safetensors.index.json} ({@code weight_map}: tensor name to file). All files are
 * opened (and their headers validated) up front; tensor data is read only on request.
 */
public final class SafetensorsWeights implements WeightSource {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  private final Map<String, SafetensorsFile> byTensor;
  private final List<SafetensorsFile> files;

  private SafetensorsWeights(Map<String, SafetensorsFile> byTensor, List<SafetensorsFile> files) {
    this.byTensor = byTensor;
    this.files = files;
  }

  public static SafetensorsWeights open(Path dir) {
    Path index = dir.resolve(INDEX);
    Path single = dir.resolve(SINGLE);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
      if (Files.exists(index)) {
        JsonNode map;
        try {
          map = new ObjectMapper().readTree(Files.readAllBytes(index)).get("weight_map");
        } catch (IOException e) {
          throw new ModelFormatException(index + ": cannot read: " + e.getMessage(), e);
        }
        if (map == null || !map.isObject()) {
          throw new ModelFormatException(index + ": weight_map is missing");
        }
        Map<String, SafetensorsFile> byFile = new HashMap<>();
        var it = map.fields();
        while (it.hasNext()) {
          var e = it.next();
          String fileName = e.getValue().asText();
          Path p = dir.resolve(fileName).normalize();
          if (!p.startsWith(dir.normalize())) {
            throw new ModelFormatException(index + ": weight_map points outside the model directory: " + fileName);
          }
          SafetensorsFile f = byFile.get(fileName);
          if (f == null) {
            if (!Files.exists(p)) {
              throw new ModelFormatException(index + ": tensor " + e.getKey() + " is in " + fileName + ", which is missing");
            }
            f = SafetensorsFile.open(p);
            opened.add(f);
            byFile.put(fileName, f);
          }
          if (!f.entries().containsKey(e.getKey())) {
            throw new ModelFormatException(p + ": tensor " + e.getKey() + " is missing (listed in " + INDEX + ")");
          }
          byTensor.put(e.getKey(), f);
        }
      } else if (Files.exists(single)) {
        SafetensorsFile f = SafetensorsFile.open(single);
        opened.add(f);
        f.entries().keySet().forEach(n -> byTensor.put(n, f));
      } else {
        throw new ModelFormatException(dir + ": neither " + SINGLE + " nor " + INDEX + " is present");
      }
      return new SafetensorsWeights(byTensor, opened);
    } catch (RuntimeException e) {
      opened.forEach(SafetensorsFile::close);
      throw e;
    }
  }

  @Override
  public boolean has(String name) {
    return byTensor.containsKey(name);
  }

  @Override
  public long[] shape(String name) {
    return file(name).entries().get(name).shape().clone();
  }

  @Override
  public float[] tensor(String name) {
    return file(name).read(name);
  }

  @Override
  public void read(String name, long offset, float[] dst, int n) {
    file(name).readRange(name, offset, dst, n);
  }

  /** The file that holds a tensor, for error messages. */
  public Path fileOf(String name) {
    return file(name).path();
  }

  private SafetensorsFile file(String name) {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) {
      throw new ModelFormatException("tensor " + name + " is missing from the checkpoint");
    }
    return f;
  }

  @Override
  public List<String> names() {
    return List.copyOf(byTensor.keySet());
  }

  /** The files' paths, for hashing the model's identity. */
  public List<Path> paths() {
    return files.stream().map(SafetensorsFile::path).toList();
  }

  @Override
  public void close() {
    files.forEach(SafetensorsFile::close);
  }
}
