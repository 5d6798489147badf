package dev.dsd.node.metrics;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict reader of the Prometheus text format 0.0.4, written from the format's description, so
 * that tests fail on anything a Prometheus server would refuse: bad names, label syntax or escapes,
 * values that are not Go floats, a family without TYPE, a TYPE after its samples or given twice,
 * a missing final newline.
 */
public final class PrometheusTextParser {
  public record Sample(String name, Map<String, String> labels, double value) {}

  private static final Pattern NAME = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
  private static final Pattern HELP = Pattern.compile("# HELP (" + NAME + ") .*");
  private static final Pattern TYPE = Pattern.compile("# TYPE (" + NAME + ") (counter|gauge|summary|histogram|untyped)");
  private static final Pattern SAMPLE = Pattern.compile("(" + NAME + ")(\\{.*})? (\\S+)( -?\\d+)?");
  private static final Pattern VALUE = Pattern.compile("NaN|[+-]Inf|[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");
  private static final Pattern LABEL_NAME = Pattern.compile("[a-zA-Z_][a-zA-Z0-9_]*");

  private PrometheusTextParser() {}

  public static List<Sample> parse(String text) {
    if (!text.isEmpty() && !text.endsWith("\n")) {
      throw new IllegalArgumentException("the exposition does not end with a newline");
    }
    Map<String, String> types = new HashMap<>();
    Set<String> sampled = new HashSet<>();
    List<Sample> out = new ArrayList<>();
    String[] lines = text.split("\n", -1);
    for (int i = 0; i < lines.length - 1; i++) {
      String line = lines[i];
      String where = "line " + (i + 1) + " '" + line + "': ";
      Matcher m;
      if (line.startsWith("# HELP ")) {
        if (!HELP.matcher(line).matches()) {
          throw new IllegalArgumentException(where + "bad HELP");
        }
      } else if (line.startsWith("# TYPE ")) {
        if (!(m = TYPE.matcher(line)).matches()) {
          throw new IllegalArgumentException(where + "bad TYPE");
        }
        if (types.put(m.group(1), m.group(2)) != null || sampled.contains(m.group(1))) {
          throw new IllegalArgumentException(where + "TYPE given twice or after the family's samples");
        }
      } else if (line.startsWith("#") || line.isBlank()) {
        continue;
      } else if ((m = SAMPLE.matcher(line)).matches()) {
        String family = family(m.group(1), types);
        if (family == null) {
          throw new IllegalArgumentException(where + "sample of a family without TYPE");
        }
        sampled.add(family);
        if (!VALUE.matcher(m.group(3)).matches()) {
          throw new IllegalArgumentException(where + "value is not a Go float");
        }
        out.add(new Sample(m.group(1), labels(m.group(2), where), value(m.group(3))));
      } else {
        throw new IllegalArgumentException(where + "not a comment or a sample");
      }
    }
    return out;
  }

  /** The first sample named {@code name} whose labels include {@code labels} (name, value, ...). */
  public static Sample find(List<Sample> samples, String name, String... labels) {
    for (Sample s : samples) {
      boolean match = s.name().equals(name);
      for (int i = 0; match && i < labels.length; i += 2) {
        match = labels[i + 1].equals(s.labels().get(labels[i]));
      }
      if (match) {
        return s;
      }
    }
    throw new AssertionError("no sample " + name + " " + List.of(labels) + " in " + samples);
  }

  private static String family(String name, Map<String, String> types) {
    if (types.containsKey(name)) {
      return name;
    }
    for (String suffix : new String[] {"_sum", "_count", "_bucket"}) {
      if (name.endsWith(suffix)) {
        String base = name.substring(0, name.length() - suffix.length());
        String type = types.get(base);
        if ("summary".equals(type) || "histogram".equals(type)) {
          return base;
        }
      }
    }
    return null;
  }

  private static Map<String, String> labels(String block, String where) {
    Map<String, String> out = new LinkedHashMap<>();
    if (block == null) {
      return out;
    }
    String s = block.substring(1, block.length() - 1);
    int i = 0;
    while (i < s.length()) {
      int eq = s.indexOf('=', i);
      if (eq < 0 || !LABEL_NAME.matcher(s.substring(i, eq)).matches() || eq + 1 >= s.length() || s.charAt(eq + 1) != '"') {
        throw new IllegalArgumentException(where + "bad label at " + i);
      }
      StringBuilder v = new StringBuilder();
      int j = eq + 2;
      for (; j < s.length() && s.charAt(j) != '"'; j++) {
        char c = s.charAt(j);
        if (c == '\\') {
          char e = j + 1 < s.length() ? s.charAt(++j) : ' ';
          if (e != '\\' && e != '"' && e != 'n') {
            throw new IllegalArgumentException(where + "bad escape \\" + e);
          }
          v.append(e == 'n' ? '\n' : e);
        } else {
          v.append(c);
        }
      }
      if (j >= s.length()) {
        throw new IllegalArgumentException(where + "unterminated label value");
      }
      if (out.put(s.substring(i, eq), v.toString()) != null) {
        throw new IllegalArgumentException(where + "label given twice");
      }
      i = j + 1;
      if (i < s.length()) {
        if (s.charAt(i) != ',') {
          throw new IllegalArgumentException(where + "expected ',' between labels");
        }
        i++;
      }
    }
    return out;
  }

  private static double value(String v) {
    return switch (v) {
      case "+Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      case "NaN" -> Double.NaN;
      default -> Double.parseDouble(v);
    };
  }
}
