package dev.dsd.p2p.pnet;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import org.bouncycastle.crypto.engines.XSalsa20Engine;
import org.bouncycastle.crypto.params.KeyParameter;
import org.bouncycastle.crypto.params.ParametersWithIV;

/**
 * One direction of a private-network connection: the XSalsa20 key stream of the PSK and the
 * sender's nonce, xored over every byte that direction carries, from the first byte after the nonce.
 */
final class PskCipher {
  static final int NONCE_LENGTH = 24;
  // BouncyCastle works on arrays; direct buffers go through this many bytes at a time.
  private static final int CHUNK = 8 * 1024;

  private final XSalsa20Engine engine = new XSalsa20Engine();
  private byte[] scratch;

  PskCipher(SwarmKey key, byte[] nonce) {
    if (nonce.length != NONCE_LENGTH) {
      throw new IllegalArgumentException("pnet nonce must be " + NONCE_LENGTH + " bytes, got " + nonce.length);
    }
    engine.init(true, new ParametersWithIV(new KeyParameter(key.bytes()), nonce));
  }

  /** Xors {@code len} bytes of {@code buf} from {@code index} with the next bytes of the key stream. */
  void xorInPlace(ByteBuf buf, int index, int len) {
    if (buf.hasArray()) {
      byte[] a = buf.array();
      int off = buf.arrayOffset() + index;
      engine.processBytes(a, off, len, a, off);
      return;
    }
    byte[] s = scratch();
    for (int done = 0; done < len; ) {
      int n = Math.min(s.length, len - done);
      buf.getBytes(index + done, s, 0, n);
      engine.processBytes(s, 0, n, s, 0);
      buf.setBytes(index + done, s, 0, n);
      done += n;
    }
  }

  /** The readable bytes of {@code src} xored into a new buffer; {@code src} is left as it was. */
  ByteBuf xorCopy(ByteBuf src, ByteBufAllocator alloc) {
    int len = src.readableBytes();
    ByteBuf out = alloc.buffer(len);
    byte[] s = scratch();
    for (int done = 0; done < len; ) {
      int n = Math.min(s.length, len - done);
      src.getBytes(src.readerIndex() + done, s, 0, n);
      engine.processBytes(s, 0, n, s, 0);
      out.writeBytes(s, 0, n);
      done += n;
    }
    return out;
  }

  private byte[] scratch() {
    if (scratch == null) {
      scratch = new byte[CHUNK];
    }
    return scratch;
  }
}
