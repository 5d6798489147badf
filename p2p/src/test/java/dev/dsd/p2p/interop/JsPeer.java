package dev.dsd.p2p.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A js-libp2p peer in a child process (p2p/src/test/js/peer.mjs), driven by JSON lines. The
 * packages come from the committed lock file ({@code npm ci}, done by .ci/run); when they are
 * missing the tests fail with that instruction rather than skip.
 */
final class JsPeer implements AutoCloseable {
  static final Path DIR = Path.of("src/test/js").toAbsolutePath();
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Process process;
  private final Writer stdin;
  private final BlockingQueue<JsonNode> lines = new ArrayBlockingQueue<>(1024);
  private final AtomicInteger ids = new AtomicInteger();
  final String peerId;
  final String addr;

  JsPeer() throws IOException, InterruptedException {
    this(List.of());
  }

  /** A peer started with extra peer.mjs arguments, e.g. {@code --swarm-key FILE}. */
  JsPeer(List<String> args) throws IOException, InterruptedException {
    this("peer.mjs", args);
  }

  /** Another script of the same kind (relay-peer.mjs), with its arguments. */
  JsPeer(String script, List<String> args) throws IOException, InterruptedException {
    if (!Files.isDirectory(DIR.resolve("node_modules/libp2p"))) {
      throw new IllegalStateException("js-libp2p is not installed: run `npm ci` in " + DIR + " (.ci/run does)");
    }
    List<String> command = new ArrayList<>(List.of("node", "--import", "./polyfill.mjs", script));
    command.addAll(args);
    process = new ProcessBuilder(command).directory(DIR.toFile())
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String l;
        while ((l = r.readLine()) != null) {
          if (l.startsWith("{")) {
            lines.offer(JSON.readTree(l));
          }
        }
      } catch (IOException ignored) {
        // process ended
      }
    }, "js-peer-stdout");
    reader.setDaemon(true);
    reader.start();
    JsonNode ready = lines.poll(60, TimeUnit.SECONDS);
    if (ready == null || !"ready".equals(ready.path("event").asText())) {
      close();
      throw new IllegalStateException("js peer did not start: " + ready);
    }
    peerId = ready.get("peerId").asText();
    addr = ready.get("addrs").get(0).asText();
  }

  /** Sends a command and waits for its answer; fails the test on an error answer. */
  JsonNode call(ObjectNode cmd, int timeoutSeconds) throws IOException, InterruptedException {
    int id = ids.incrementAndGet();
    cmd.put("id", id);
    stdin.write(JSON.writeValueAsString(cmd) + "\n");
    stdin.flush();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
    while (true) {
      JsonNode r = lines.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      if (r == null) {
        throw new AssertionError("js peer did not answer " + cmd + " within " + timeoutSeconds + " s");
      }
      if (r.path("id").asInt() == id) {
        if (!r.path("ok").asBoolean()) {
          throw new AssertionError("js peer failed " + cmd + ": " + r.path("error").asText());
        }
        return r;
      }
    }
  }

  static ObjectNode cmd(String name) {
    return JSON.createObjectNode().put("cmd", name);
  }

  @Override
  public void close() {
    try {
      stdin.write("{\"cmd\":\"quit\"}\n");
      stdin.flush();
    } catch (IOException ignored) {
      // already gone
    }
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
