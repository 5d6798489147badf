package dev.dsd.p2p.dcutr;

import dev.dsd.p2p.dcutr.proto.DcutrProto.HolePunch;

/** Test access to how a DCUtR CONNECT's addresses are read. */
public final class DcutrFuzzSupport {
  private DcutrFuzzSupport() {}

  public static void dialable(HolePunch m) {
    Dcutr.dialable(m);
  }
}
