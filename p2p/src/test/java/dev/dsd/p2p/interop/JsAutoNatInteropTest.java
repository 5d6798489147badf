package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.autonat.AutoNatProtocol;
import dev.dsd.p2p.autonat.AutoNatService;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message.ResponseStatus;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * AutoNAT v1 against js-libp2p's @libp2p/autonat, both ways, on loopback. js's server refuses to
 * dial private and loopback addresses (it serves the public internet only), so dsd asking js gets
 * a well-formed E_DIAL_REFUSED; js's client never asks about loopback addresses, so for the other
 * way the js peer sends the request itself, encoded by @libp2p/autonat's own protobuf codec, and
 * dsd dials it back.
 */
class JsAutoNatInteropTest {

  @Test
  void dsdAsksJsAndJsAsksDsd() throws Exception {
    try (JsPeer js = new JsPeer();
        NettyHost host = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        AutoNatService autonat = new AutoNatService(host, true, 2)) {
      PeerId jsId = PeerId.parse(js.peerId);
      host.connect(Multiaddr.parse(js.addr)).get(20, TimeUnit.SECONDS);
      host.identify(jsId).get(20, TimeUnit.SECONDS);
      assertTrue(host.peerStore().protocols(jsId).contains(AutoNatProtocol.ID), "js serves autonat");

      AutoNatProtocol.DialResponse fromJs = autonat.ask(jsId).get(30, TimeUnit.SECONDS);
      assertEquals(ResponseStatus.E_DIAL_REFUSED, fromJs.status(), fromJs.text());
      assertTrue(fromJs.text().contains("no dialable addresses"), fromJs.text());

      JsonNode fromDsd = js.call(JsPeer.cmd("autonatAsk").put("peer", host.peerId().toBase58()), 30);
      assertEquals("DIAL_RESPONSE", fromDsd.get("type").asText(), fromDsd.toString());
      assertEquals("OK", fromDsd.get("status").asText(), fromDsd.toString());
      assertEquals(Multiaddr.parse(js.addr).withoutPeer().toString(), fromDsd.get("addr").asText(),
          "dsd dialed js back at its own address");
    }
  }
}
