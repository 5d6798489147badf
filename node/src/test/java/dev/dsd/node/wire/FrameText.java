package dev.dsd.node.wire;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.Parser;
import com.google.protobuf.TextFormat;
import java.util.HexFormat;

/** Frames as text for fuzzers' failure messages: the decoded message (if it decodes) and its bytes. */
public final class FrameText {
  private FrameText() {}

  public static String describe(byte[] body, Parser<? extends MessageOrBuilder> parser) {
    String text;
    try {
      text = TextFormat.shortDebugString(parser.parseFrom(body));
    } catch (InvalidProtocolBufferException e) {
      text = "unparseable";
    }
    if (text.length() > 600) {
      text = text.substring(0, 600) + "...";
    }
    return text + " [" + hex(body) + "]";
  }

  /** The first 200 bytes in hex. */
  public static String hex(byte[] b) {
    String h = HexFormat.of().formatHex(b, 0, Math.min(b.length, 200));
    return b.length > 200 ? h + "...(" + b.length + " bytes)" : h;
  }
}
