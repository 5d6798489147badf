package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How long one call of a model's layers takes, per weights format, as {@code dsd bench shard --json}
 * measured it on a warm KV cache:
 *
 * <pre>
 * {"format": "dsd-compute-profile/1", "model": "pycoder-target", "layers": 8, "hidden": 256,
 *  "threads": 1, "warm": 128,
 *  "weights": {"f32": {"points": [{"tokens": 1, "ms": 1.1}, ...], "call_ms": 1.0, "token_ms": 0.05,
 *                      "row_ms": 0}}}
 * </pre>
 *
 * {@code call_ms + token_ms * T} is the least-squares line through the points for the whole model;
 * a stage of n layers costs n/layers of it. {@code row_ms} is what each extra session row of a
 * batched call adds beyond its tokens (0 when the profile was measured with one row only).
 */
public final class ComputeProfile {
  public static final String FORMAT = "dsd-compute-profile/1";
  /** Points one profile may hold per weights format (bench writes 4). */
  public static final int MAX_POINTS = 64;

  /** One weights format's fitted line, for the whole model. */
  public record Fit(double callMs, double tokenMs, double rowMs, List<double[]> points) {
    public Fit {
      if (!(callMs >= 0 && tokenMs >= 0 && rowMs >= 0)) {
        throw new IllegalArgumentException("a compute fit needs call_ms, token_ms, row_ms >= 0, got " + callMs + ", "
            + tokenMs + ", " + rowMs);
      }
      points = List.copyOf(points);
    }

    /** Least squares {@code ms = a + b T} through (tokens, ms) points; a negative part is clamped to 0. */
    public static Fit of(List<double[]> points) {
      if (points.isEmpty()) {
        throw new IllegalArgumentException("a compute fit needs at least one measured point");
      }
      double n = points.size();
      double st = 0, sm = 0, stt = 0, stm = 0;
      for (double[] p : points) {
        st += p[0];
        sm += p[1];
        stt += p[0] * p[0];
        stm += p[0] * p[1];
      }
      double det = n * stt - st * st;
      double b = det > 1e-12 ? (n * stm - st * sm) / det : 0;
      double a = (sm - b * st) / n;
      if (b < 0) {
        b = 0;
        a = sm / n;
      } else if (a < 0) {
        a = 0;
        b = stm / stt;
      }
      return new Fit(a, b, 0, points);
    }
  }

  private final String model;
  private final int layers;
  private final int hidden;
  private final Map<String, Fit> weights;

  public ComputeProfile(String model, int layers, int hidden, Map<String, Fit> weights) {
    if (layers < 1 || hidden < 1 || weights.isEmpty()) {
      throw new IllegalArgumentException("a compute profile needs layers >= 1, hidden >= 1 and one weights format");
    }
    this.model = model;
    this.layers = layers;
    this.hidden = hidden;
    this.weights = Map.copyOf(weights);
  }

  public String model() {
    return model;
  }

  public int layers() {
    return layers;
  }

  public int hidden() {
    return hidden;
  }

  public Fit fit(String format) {
    Fit f = weights.get(format);
    if (f == null) {
      throw new IllegalArgumentException("profile of " + model + " has no weights format '" + format + "' (has "
          + weights.keySet() + ")");
    }
    return f;
  }

  /** Milliseconds one call over {@code stageLayers} layers takes with {@code rows} sessions and {@code tokens} in all. */
  public double millis(String format, int stageLayers, int rows, int tokens) {
    Fit f = fit(format);
    return (double) stageLayers / layers * (f.callMs + f.tokenMs * tokens + f.rowMs * Math.max(0, rows - 1));
  }

  /** The same profile for a model of {@code newLayers} layers of width {@code newHidden}, each layer {@code factor} times as slow. */
  public ComputeProfile scaled(String name, int newLayers, int newHidden, double factor) {
    Map<String, Fit> m = new LinkedHashMap<>();
    weights.forEach((k, f) -> m.put(k, new Fit(f.callMs * factor * newLayers / layers, f.tokenMs * factor * newLayers
        / layers, f.rowMs * factor * newLayers / layers, List.of())));
    return new ComputeProfile(name, newLayers, newHidden, m);
  }

  public static ComputeProfile read(Path file) throws IOException {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new IOException("cannot read compute profile " + file + ": " + e.getMessage(), e);
    }
    if (root == null || !FORMAT.equals(root.path("format").asText())) {
      throw new IllegalArgumentException(file + " is not a compute profile (\"format\": \"" + FORMAT + "\" missing)");
    }
    Map<String, Fit> m = new LinkedHashMap<>();
    root.path("weights").fields().forEachRemaining(e -> {
      JsonNode w = e.getValue();
      List<double[]> pts = new ArrayList<>();
      for (JsonNode p : w.path("points")) {
        if (pts.size() == MAX_POINTS) {
          throw new IllegalArgumentException(file + ": more than " + MAX_POINTS + " points for " + e.getKey());
        }
        pts.add(new double[] {p.path("tokens").asDouble(), p.path("ms").asDouble()});
      }
      Fit f = w.has("call_ms") ? new Fit(w.path("call_ms").asDouble(), w.path("token_ms").asDouble(),
          w.path("row_ms").asDouble(0), pts) : Fit.of(pts);
      m.put(e.getKey(), f);
    });
    return new ComputeProfile(root.path("model").asText("?"), root.path("layers").asInt(), root.path("hidden").asInt(), m);
  }

  public ObjectNode toJson(Map<String, Object> extra) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    root.put("format", FORMAT);
    root.put("model", model);
    root.put("layers", layers);
    root.put("hidden", hidden);
    extra.forEach((k, v) -> root.set(k, om.valueToTree(v)));
    ObjectNode ws = root.putObject("weights");
    weights.forEach((k, f) -> {
      ObjectNode w = ws.putObject(k);
      ArrayNode pts = w.putArray("points");
      for (double[] p : f.points()) {
        pts.addObject().put("tokens", (int) p[0]).put("ms", p[1]);
      }
      w.put("call_ms", f.callMs()).put("token_ms", f.tokenMs()).put("row_ms", f.rowMs());
    });
    return root;
  }

  public void write(Path file, Map<String, Object> extra) throws IOException {
    Files.writeString(file, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(toJson(extra)) + "\n");
  }
}
