package dev.dsd.pipeline.testing;

/** GPT-2's byte-to-printable-character mapping used by byte-level BPE vocabularies. */
final class ByteLevel {
  static final char[] BYTE_TO_CHAR = new char[256];

  static {
    boolean[] direct = new boolean[256];
    for (int b = '!'; b <= '~'; b++) {
      direct[b] = true;
    }
    for (int b = 0xA1; b <= 0xAC; b++) {
      direct[b] = true;
    }
    for (int b = 0xAE; b <= 0xFF; b++) {
      direct[b] = true;
    }
    int n = 0;
    for (int b = 0; b < 256; b++) {
      BYTE_TO_CHAR[b] = direct[b] ? (char) b : (char) (256 + n++);
    }
  }

  private ByteLevel() {}
}
