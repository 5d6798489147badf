package dev.dsd.p2p.multiaddr;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A multiaddr (github.com/multiformats/multiaddr) limited to what dsd dials and announces:
 * {@code /ip4}, {@code /ip6}, {@code /dns}, {@code /dns4}, {@code /dns6}, {@code /tcp} and
 * {@code /p2p} (legacy {@code /ipfs} accepted on input). Binary form: per component, the protocol
 * code as uvarint, then a fixed-size value or a uvarint length and the value.
 */
public final class Multiaddr {
  /** Protocol codes from the multicodec table. */
  public enum Protocol {
    IP4(4, "ip4", 4),
    TCP(6, "tcp", 2),
    IP6(41, "ip6", 16),
    DNS(53, "dns", -1),
    DNS4(54, "dns4", -1),
    DNS6(55, "dns6", -1),
    P2P(421, "p2p", -1),
    P2P_CIRCUIT(290, "p2p-circuit", 0);

    public final int code;
    public final String name;
    final int size; // -1: length-prefixed; 0: no value

    Protocol(int code, String name, int size) {
      this.code = code;
      this.name = name;
      this.size = size;
    }

    static Protocol byCode(long code) {
      for (Protocol p : values()) {
        if (p.code == code) {
          return p;
        }
      }
      throw new ProtocolViolationException("unsupported multiaddr protocol code " + code);
    }

    static Protocol byName(String name) {
      if (name.equals("ipfs")) {
        return P2P;
      }
      for (Protocol p : values()) {
        if (p.name.equals(name)) {
          return p;
        }
      }
      throw new IllegalArgumentException("unsupported multiaddr protocol /" + name);
    }
  }

  /** One component: protocol and its value in binary form. */
  public record Component(Protocol protocol, byte[] value) {
    public String valueString() {
      return switch (protocol) {
        case IP4, IP6 -> {
          try {
            String s = InetAddress.getByAddress(value).getHostAddress();
            yield protocol == Protocol.IP6 ? compressIp6(s) : s;
          } catch (UnknownHostException e) {
            throw new IllegalStateException(e);
          }
        }
        case TCP -> Integer.toString(((value[0] & 0xFF) << 8) | (value[1] & 0xFF));
        case DNS, DNS4, DNS6 -> new String(value, StandardCharsets.UTF_8);
        case P2P -> PeerId.fromBytes(value).toBase58();
        case P2P_CIRCUIT -> "";
      };
    }
  }

  /** Longest binary multiaddr accepted (a DNS name is at most 255 bytes). */
  public static final int MAX_BYTES = 1024;

  private final List<Component> components;

  private Multiaddr(List<Component> components) {
    this.components = List.copyOf(components);
  }

  public static Multiaddr parse(String text) {
    if (!text.startsWith("/")) {
      throw new IllegalArgumentException("multiaddr must start with '/': " + text);
    }
    String[] parts = text.substring(1).split("/", -1);
    List<Component> out = new ArrayList<>();
    for (int i = 0; i < parts.length; i++) {
      if (parts[i].isEmpty() && i == parts.length - 1) {
        break; // trailing slash
      }
      Protocol p = Protocol.byName(parts[i]);
      if (p.size == 0) {
        out.add(new Component(p, new byte[0]));
        continue;
      }
      if (i + 1 >= parts.length) {
        throw new IllegalArgumentException("multiaddr " + text + ": /" + p.name + " needs a value");
      }
      out.add(new Component(p, valueFromString(p, parts[++i], text)));
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("empty multiaddr");
    }
    return new Multiaddr(out);
  }

  private static byte[] valueFromString(Protocol p, String v, String text) {
    try {
      switch (p) {
        case IP4 -> {
          if (!v.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
            throw new IllegalArgumentException("not an IPv4 address");
          }
          return InetAddress.getByName(v).getAddress();
        }
        case IP6 -> {
          if (!v.contains(":")) {
            throw new IllegalArgumentException("not an IPv6 address");
          }
          byte[] a = InetAddress.getByName(v).getAddress();
          if (a.length != 16) {
            throw new IllegalArgumentException("not an IPv6 address");
          }
          return a;
        }
        case TCP -> {
          int port = Integer.parseInt(v);
          if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port out of range");
          }
          return new byte[] {(byte) (port >> 8), (byte) port};
        }
        case DNS, DNS4, DNS6 -> {
          if (v.isEmpty() || v.length() > 255) {
            throw new IllegalArgumentException("DNS name must have 1..255 characters");
          }
          return v.getBytes(StandardCharsets.UTF_8);
        }
        case P2P -> {
          return PeerId.parse(v).toBytes();
        }
        default -> throw new IllegalStateException();
      }
    } catch (UnknownHostException | RuntimeException e) {
      throw new IllegalArgumentException("multiaddr " + text + ": invalid /" + p.name + " value '" + v + "': "
          + e.getMessage(), e);
    }
  }

  public static Multiaddr fromBytes(byte[] b) {
    if (b.length == 0 || b.length > MAX_BYTES) {
      throw new ProtocolViolationException("multiaddr of " + b.length + " bytes (limit " + MAX_BYTES + ")");
    }
    List<Component> out = new ArrayList<>();
    int pos = 0;
    while (pos < b.length) {
      long[] code = Varint.decode(b, pos);
      pos += (int) code[1];
      Protocol p = Protocol.byCode(code[0]);
      int len = p.size;
      if (len < 0) {
        long[] l = Varint.decode(b, pos);
        pos += (int) l[1];
        if (l[0] > b.length - pos) {
          throw new ProtocolViolationException("multiaddr /" + p.name + " value runs past the end");
        }
        len = (int) l[0];
      }
      if (pos + len > b.length) {
        throw new ProtocolViolationException("multiaddr /" + p.name + " value runs past the end");
      }
      byte[] v = Arrays.copyOfRange(b, pos, pos + len);
      if (p == Protocol.P2P) {
        PeerId.fromBytes(v); // validates
      }
      out.add(new Component(p, v));
      pos += len;
    }
    return new Multiaddr(out);
  }

  public byte[] toBytes() {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    for (Component c : components) {
      o.writeBytes(Varint.encode(c.protocol().code));
      if (c.protocol().size < 0) {
        o.writeBytes(Varint.encode(c.value().length));
      }
      o.writeBytes(c.value());
    }
    return o.toByteArray();
  }

  public List<Component> components() {
    return components;
  }

  /**
   * The peer this address reaches: its trailing /p2p id, or null. In a relay address
   * ({@code .../p2p/RELAY/p2p-circuit/p2p/TARGET}) that is the target, not the relay.
   */
  public PeerId peerId() {
    Component last = components.get(components.size() - 1);
    return last.protocol() == Protocol.P2P ? PeerId.fromBytes(last.value()) : null;
  }

  /** This address with /p2p/ID appended (replacing a trailing /p2p already there). */
  public Multiaddr withPeer(PeerId id) {
    List<Component> out = new ArrayList<>(withoutPeer().components);
    out.add(new Component(Protocol.P2P, id.toBytes()));
    return new Multiaddr(out);
  }

  /** Without the trailing /p2p id; a relay's /p2p id inside a circuit address stays. */
  public Multiaddr withoutPeer() {
    if (components.size() > 1 && components.get(components.size() - 1).protocol() == Protocol.P2P) {
      return new Multiaddr(components.subList(0, components.size() - 1));
    }
    return this;
  }

  /** Whether this is a relay address (contains /p2p-circuit). */
  public boolean isCircuit() {
    return components.stream().anyMatch(c -> c.protocol() == Protocol.P2P_CIRCUIT);
  }

  /**
   * The relay part of a circuit address: everything before /p2p-circuit, ending in /p2p/RELAY
   * (e.g. {@code /ip4/1.2.3.4/tcp/4001/p2p/RELAY}); throws if this is not a circuit address.
   */
  public Multiaddr relayPart() {
    for (int i = 0; i < components.size(); i++) {
      if (components.get(i).protocol() == Protocol.P2P_CIRCUIT) {
        if (i == 0 || components.get(i - 1).protocol() != Protocol.P2P) {
          throw new IllegalArgumentException(this + ": /p2p-circuit must follow the relay's /p2p/ID");
        }
        return new Multiaddr(components.subList(0, i));
      }
    }
    throw new IllegalArgumentException(this + " is not a relay (/p2p-circuit) address");
  }

  /** {@code relay/p2p-circuit}, the address a peer with a reservation on {@code relay} is reached at. */
  public static Multiaddr circuit(Multiaddr relayWithPeer) {
    List<Component> out = new ArrayList<>(relayWithPeer.components);
    out.add(new Component(Protocol.P2P_CIRCUIT, new byte[0]));
    return new Multiaddr(out);
  }

  /** host:port for a TCP address (DNS names unresolved); throws if this is not one. */
  public InetSocketAddress toInetSocketAddress() {
    String host = null;
    int port = -1;
    for (Component c : components) {
      switch (c.protocol()) {
        case IP4, IP6, DNS, DNS4, DNS6 -> host = c.valueString();
        case TCP -> port = Integer.parseInt(c.valueString());
        default -> { }
      }
    }
    if (host == null || port < 0) {
      throw new IllegalArgumentException(this + " is not a TCP address");
    }
    return InetSocketAddress.createUnresolved(host, port);
  }

  public static Multiaddr tcp(InetSocketAddress a) {
    InetAddress ip = a.getAddress();
    String proto = ip.getAddress().length == 4 ? "ip4" : "ip6";
    return parse("/" + proto + "/" + ip.getHostAddress().replaceAll("%.*$", "") + "/tcp/" + a.getPort());
  }

  static String compressIp6(String s) {
    try {
      // Java prints full groups; the canonical text form compresses the longest zero run.
      String[] g = s.split(":");
      StringBuilder sb = new StringBuilder();
      int bestStart = -1;
      int bestLen = 0;
      for (int i = 0; i < g.length; i++) {
        g[i] = Integer.toHexString(Integer.parseInt(g[i], 16));
      }
      for (int i = 0; i < g.length;) {
        if (g[i].equals("0")) {
          int j = i;
          while (j < g.length && g[j].equals("0")) {
            j++;
          }
          if (j - i > bestLen && j - i > 1) {
            bestStart = i;
            bestLen = j - i;
          }
          i = j;
        } else {
          i++;
        }
      }
      for (int i = 0; i < g.length; i++) {
        if (i == bestStart) {
          sb.append(i == 0 ? "::" : ":");
          i += bestLen - 1;
          continue;
        }
        sb.append(g[i]);
        if (i < g.length - 1) {
          sb.append(':');
        }
      }
      return sb.toString();
    } catch (NumberFormatException e) {
      return s;
    }
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    for (Component c : components) {
      sb.append('/').append(c.protocol().name);
      if (c.protocol().size != 0) {
        sb.append('/').append(c.valueString());
      }
    }
    return sb.toString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Multiaddr m && Arrays.equals(toBytes(), m.toBytes());
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(toBytes());
  }
}
