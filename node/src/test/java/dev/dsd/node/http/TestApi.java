package dev.dsd.node.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.metrics.NodeMetrics;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A real server on loopback in front of a real generator, and the HTTP calls tests make to it. */
final class TestApi implements AutoCloseable {
  static final String MODEL = "tiny-llama";
  static final int CONTEXT = 256;
  static final ObjectMapper JSON = new ObjectMapper();

  final NodeMetrics metrics = new NodeMetrics();
  final HttpApiServer server;
  private AutoCloseable owned; // what onTinyModel started for this API, closed with it
  final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(10)).build();

  TestApi(Generator generator, Path modelDir, HttpApiConfig config) {
    server = HttpApiServer.start(config, generator, new ServedModel(MODEL, CONTEXT, modelDir,
        generator instanceof LocalGenerator g ? text -> g.tokenizer().encode(text).length : null), metrics);
  }

  TestApi(Generator generator, Path modelDir, int slots) {
    this(generator, modelDir, HttpApiConfig.of("127.0.0.1", 0).withMaxConcurrentGenerations(slots));
  }

  /** An API over a local generator on the tiny model in {@code dir}; closing the API closes both. */
  static TestApi onTinyModel(Path dir, int slots) throws IOException {
    Path model = model(dir);
    LocalGenerator generator = new LocalGenerator(model, 1);
    TestApi api = new TestApi(generator, model, slots);
    api.owned = generator;
    return api;
  }

  /** The local generator behind an API made by {@link #onTinyModel}. */
  LocalGenerator generator() {
    return (LocalGenerator) owned;
  }

  /** The random tiny Llama of LocalGeneratorTest, whose context is {@link #CONTEXT}. */
  static Path model(Path dir) throws IOException {
    return TinyCheckpoint.builder().layers(3).hidden(32).heads(4).kvHeads(2).maxPositions(CONTEXT).seed(21)
        .writeTo(dir.resolve("target"));
  }

  HttpResponse<String> post(String path, String body) {
    return send(HttpRequest.newBuilder(uri(path)).POST(HttpRequest.BodyPublishers.ofString(body)));
  }

  HttpResponse<String> get(String path) {
    return send(HttpRequest.newBuilder(uri(path)).GET());
  }

  HttpResponse<String> send(HttpRequest.Builder request) {
    try {
      return client.send(request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  URI uri(String path) {
    return URI.create(server.url() + path);
  }

  static JsonNode json(HttpResponse<String> r) {
    try {
      return JSON.readTree(r.body());
    } catch (IOException e) {
      throw new AssertionError("not JSON (" + r.statusCode() + "): " + r.body(), e);
    }
  }

  /**
   * The {@code data:} payloads of a server-sent event stream, checking the framing on the way:
   * every event is exactly one {@code data: ...} line followed by a blank line.
   */
  static List<String> events(String body) {
    List<String> out = new ArrayList<>();
    int i = 0;
    while (i < body.length()) {
      int end = body.indexOf("\n\n", i);
      if (!body.startsWith("data: ", i) || end < 0) {
        throw new AssertionError("not an SSE data event at " + i + ": " + body.substring(i, Math.min(body.length(), i + 80)));
      }
      String data = body.substring(i + "data: ".length(), end);
      if (data.contains("\n")) {
        throw new AssertionError("an event spans lines: " + data);
      }
      out.add(data);
      i = end + 2;
    }
    return out;
  }

  /** A raw connection, for what an HTTP client library will not do: garbage, or hanging up midway. */
  static final class RawClient implements AutoCloseable {
    final Socket socket;
    final InputStream in;
    final OutputStream out;

    RawClient(HttpApiServer server) throws IOException {
      socket = new Socket(server.address().getAddress(), server.address().getPort());
      socket.setSoTimeout(30_000);
      in = socket.getInputStream();
      out = socket.getOutputStream();
    }

    void write(String s) throws IOException {
      out.write(s.getBytes(StandardCharsets.UTF_8));
      out.flush();
    }

    void post(String path, String json) throws IOException {
      byte[] body = json.getBytes(StandardCharsets.UTF_8);
      write("POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: "
          + body.length + "\r\n\r\n");
      out.write(body);
      out.flush();
    }

    /** Reads until {@code marker} has arrived and returns all read so far. */
    String readUntil(String marker) throws IOException {
      StringBuilder s = new StringBuilder();
      byte[] buf = new byte[4096];
      while (s.indexOf(marker) < 0) {
        int n = in.read(buf);
        if (n < 0) {
          throw new AssertionError("connection closed before '" + marker + "': " + s);
        }
        s.append(new String(buf, 0, n, StandardCharsets.ISO_8859_1));
      }
      return s.toString();
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  @Override
  public void close() {
    server.close();
    if (owned != null) {
      try {
        owned.close();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
