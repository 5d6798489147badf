package dev.dsd.node.metrics;

import java.util.regex.Pattern;

/**
 * Writes the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 * <pre>
 * # HELP name help text
 * # TYPE name counter|gauge|summary
 * name{label="value",...} 1.5
 * </pre>
 *
 * Every family is announced by HELP and TYPE before its samples, as the format requires.
 */
public final class PrometheusText {
  /** Content-Type of this format. */
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final Pattern NAME = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
  private static final Pattern LABEL = Pattern.compile("[a-zA-Z_][a-zA-Z0-9_]*");

  private final StringBuilder out = new StringBuilder();

  public PrometheusText family(String name, String type, String help) {
    checkName(name);
    out.append("# HELP ").append(name).append(' ')
        .append(help.replace("\\", "\\\\").replace("\n", "\\n")).append('\n');
    out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    return this;
  }

  /** One sample; {@code labels} alternate name and value. */
  public PrometheusText sample(String name, double value, String... labels) {
    checkName(name);
    out.append(name);
    if (labels.length > 0) {
      out.append('{');
      for (int i = 0; i < labels.length; i += 2) {
        if (!LABEL.matcher(labels[i]).matches()) {
          throw new IllegalArgumentException("not a Prometheus label name: " + labels[i]);
        }
        out.append(i == 0 ? "" : ",").append(labels[i]).append("=\"")
            .append(labels[i + 1].replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")).append('"');
      }
      out.append('}');
    }
    out.append(' ').append(format(value)).append('\n');
    return this;
  }

  @Override
  public String toString() {
    return out.toString();
  }

  private static void checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("not a Prometheus metric name: " + name);
    }
  }

  /** Go's float syntax: integers without a fraction, NaN and +Inf/-Inf spelled as Prometheus expects. */
  static String format(double v) {
    if (Double.isNaN(v)) {
      return "NaN";
    }
    if (Double.isInfinite(v)) {
      return v > 0 ? "+Inf" : "-Inf";
    }
    if (v == Math.rint(v) && Math.abs(v) < 1e15) {
      return Long.toString((long) v);
    }
    return Double.toString(v);
  }
}
