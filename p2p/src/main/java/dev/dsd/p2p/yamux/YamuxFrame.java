package dev.dsd.p2p.yamux;

import io.netty.buffer.ByteBuf;
import io.netty.util.ReferenceCounted;

/**
 * One yamux frame (github.com/hashicorp/yamux spec.md):
 *
 * <pre>
 *   | version u8 = 0 | type u8 | flags u16 | stream id u32 | length u32 |  all big-endian
 *   type: 0 DATA (length payload bytes follow) 1 WINDOW_UPDATE (length = delta)
 *         2 PING (length = opaque value)       3 GO_AWAY (length = error code)
 *   flags: SYN 1, ACK 2, FIN 4, RST 8
 * </pre>
 *
 * {@code data} is non-null only for DATA frames and is owned by whoever holds the frame.
 */
public record YamuxFrame(int type, int flags, int streamId, long length, ByteBuf data) {
  public static final int HEADER = 12;
  public static final int DATA = 0;
  public static final int WINDOW_UPDATE = 1;
  public static final int PING = 2;
  public static final int GO_AWAY = 3;
  public static final int SYN = 1;
  public static final int ACK = 2;
  public static final int FIN = 4;
  public static final int RST = 8;
  public static final int GO_AWAY_NORMAL = 0;
  public static final int GO_AWAY_PROTOCOL_ERROR = 1;
  public static final int GO_AWAY_INTERNAL_ERROR = 2;

  public static YamuxFrame data(int streamId, int flags, ByteBuf data) {
    return new YamuxFrame(DATA, flags, streamId, data.readableBytes(), data);
  }

  public static YamuxFrame windowUpdate(int streamId, int flags, long delta) {
    return new YamuxFrame(WINDOW_UPDATE, flags, streamId, delta, null);
  }

  public boolean has(int flag) {
    return (flags & flag) != 0;
  }

  void release() {
    if (data != null) {
      ((ReferenceCounted) data).release();
    }
  }
}
