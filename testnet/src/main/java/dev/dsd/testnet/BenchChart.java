package dev.dsd.testnet;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * A line chart of tokens/s against one-way link latency, one line per decoding mode, drawn with
 * the JDK's own Java2D (headless) so the benchmark needs no plotting package.
 */
public final class BenchChart {
  private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
      new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2)};

  private BenchChart() {}

  /** {@code series}: mode → points (latency ms, tokens/s), each sorted by latency. */
  public static void write(Map<String, List<double[]>> series, String title, Path png) throws IOException {
    write(series, title, "one-way link latency (ms)", "tokens / s", png);
  }

  /** The same chart with other axes: {@code series} name → points (x, y), each sorted by x. */
  public static void write(Map<String, List<double[]>> series, String title, String xLabel, String yLabel, Path png)
      throws IOException {
    System.setProperty("java.awt.headless", "true");
    int w = 900;
    int h = 560;
    int left = 80;
    int right = 180;
    int top = 50;
    int bottom = 70;
    double maxX = 1;
    double maxY = 1;
    for (List<double[]> pts : series.values()) {
      for (double[] p : pts) {
        maxX = Math.max(maxX, p[0]);
        maxY = Math.max(maxY, p[1]);
      }
    }
    maxY = niceCeil(maxY);
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    g.setColor(Color.BLACK);
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
    g.drawString(title, left, 30);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    int pw = w - left - right;
    int ph = h - top - bottom;
    g.drawRect(left, top, pw, ph);
    for (int i = 0; i <= 5; i++) {
      double y = maxY * i / 5;
      int py = top + ph - (int) (ph * i / 5.0);
      g.setColor(new Color(0xdddddd));
      g.drawLine(left + 1, py, left + pw - 1, py);
      g.setColor(Color.BLACK);
      g.drawString(String.format("%.0f", y), left - 40, py + 4);
      double x = maxX * i / 5;
      int px = left + (int) (pw * i / 5.0);
      g.drawString(String.format("%.0f", x), px - 8, top + ph + 18);
    }
    g.drawString(xLabel, left + pw / 2 - 70, h - 25);
    g.rotate(-Math.PI / 2);
    g.drawString(yLabel, -(top + ph / 2 + 30), 25);
    g.rotate(Math.PI / 2);
    int idx = 0;
    for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
      g.setColor(PALETTE[idx % PALETTE.length]);
      g.setStroke(new BasicStroke(2.5f));
      int[] xs = new int[e.getValue().size()];
      int[] ys = new int[xs.length];
      for (int i = 0; i < xs.length; i++) {
        double[] p = e.getValue().get(i);
        xs[i] = left + (int) (pw * p[0] / maxX);
        ys[i] = top + ph - (int) (ph * p[1] / maxY);
        g.fillOval(xs[i] - 4, ys[i] - 4, 8, 8);
      }
      g.drawPolyline(xs, ys, xs.length);
      int ly = top + 20 + idx * 22;
      g.drawLine(left + pw + 20, ly - 4, left + pw + 45, ly - 4);
      g.setColor(Color.BLACK);
      g.drawString(e.getKey(), left + pw + 52, ly);
      idx++;
    }
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }

  private static double niceCeil(double v) {
    double mag = Math.pow(10, Math.floor(Math.log10(v)));
    for (double m : new double[] {1, 2, 2.5, 5, 10}) {
      if (m * mag >= v) {
        return m * mag;
      }
    }
    return 10 * mag;
  }
}
