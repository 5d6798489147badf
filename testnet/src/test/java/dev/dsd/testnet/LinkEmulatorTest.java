package dev.dsd.testnet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Correctness of the relay: bytes arrive intact and in order, and never earlier than the link allows. */
class LinkEmulatorTest {
  private ServerSocket echo;
  private Thread echoThread;

  @BeforeEach
  void startEcho() throws Exception {
    echo = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
    echoThread = new Thread(() -> {
      try (Socket s = echo.accept()) {
        s.setTcpNoDelay(true);
        s.getInputStream().transferTo(s.getOutputStream());
      } catch (Exception ignored) {
        // the test closes the socket
      }
    });
    echoThread.setDaemon(true);
    echoThread.start();
  }

  @AfterEach
  void stopEcho() throws Exception {
    echo.close();
  }

  private InetSocketAddress echoAddr() {
    return new InetSocketAddress("127.0.0.1", echo.getLocalPort());
  }

  @Test
  void relaysBytesIntactAndInOrderWithJitter() throws Exception {
    try (LinkEmulator emu = new LinkEmulator()) {
      InetSocketAddress relay =
          emu.relay(new InetSocketAddress("127.0.0.1", 0), echoAddr(), new LinkProfile(2, 2, 0));
      byte[] data = new byte[2 * 1024 * 1024];
      new Random(7).nextBytes(data);
      try (Socket s = new Socket(relay.getAddress(), relay.getPort())) {
        OutputStream out = s.getOutputStream();
        Thread writer = new Thread(() -> {
          try {
            for (int off = 0; off < data.length; off += 4096) {
              out.write(data, off, Math.min(4096, data.length - off));
            }
            out.flush();
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
        writer.start();
        byte[] back = new byte[data.length];
        new DataInputStream(s.getInputStream()).readFully(back);
        writer.join();
        assertArrayEquals(data, back);
      }
    }
  }

  @Test
  void roundTripIsNeverShorterThanTwiceTheLatency() throws Exception {
    double latency = 40;
    try (LinkEmulator emu = new LinkEmulator()) {
      InetSocketAddress relay =
          emu.relay(new InetSocketAddress("127.0.0.1", 0), echoAddr(), new LinkProfile(latency, 0, 0));
      try (Socket s = new Socket(relay.getAddress(), relay.getPort())) {
        s.setTcpNoDelay(true);
        OutputStream out = s.getOutputStream();
        InputStream in = s.getInputStream();
        for (int i = 0; i < 3; i++) {
          long t0 = System.nanoTime();
          out.write(i);
          out.flush();
          assertEquals(i, in.read());
          double rttMillis = (System.nanoTime() - t0) / 1e6;
          // A lower bound only: the relay must add both one-way delays; it may add more on a busy machine.
          assertTrue(rttMillis >= 2 * latency, "round trip " + rttMillis + " ms < 2 x " + latency + " ms");
        }
      }
    }
  }

  @Test
  void rateLimitHoldsBytesBack() throws Exception {
    double mbit = 8; // 1 MB/s
    int bytes = 256 * 1024;
    try (LinkEmulator emu = new LinkEmulator()) {
      InetSocketAddress relay =
          emu.relay(new InetSocketAddress("127.0.0.1", 0), echoAddr(), new LinkProfile(0, 0, mbit));
      try (Socket s = new Socket(relay.getAddress(), relay.getPort())) {
        long t0 = System.nanoTime();
        s.getOutputStream().write(new byte[bytes]);
        s.getOutputStream().flush();
        new DataInputStream(s.getInputStream()).readFully(new byte[bytes]);
        double seconds = (System.nanoTime() - t0) / 1e9;
        // The two directions overlap (the echo answers while still receiving), so the floor is one
        // direction's serialization time at the configured rate.
        double floor = (double) bytes * 8 / (mbit * 1e6);
        assertTrue(seconds >= floor, "took " + seconds + " s, link allows no less than " + floor + " s");
      }
    }
  }
}
