// A js-libp2p peer for dsd's circuit relay interop tests (@libp2p/circuit-relay-v2, @libp2p/dcutr).
// Prints {"event":"ready",...} then answers one JSON command per stdin line with one JSON line.
// Run: node --import ./polyfill.mjs relay-peer.mjs [--relay] [--reserve RELAY_MULTIADDR] [--dcutr-loopback]
//   --relay    serve circuit relay v2 (hop) with the js defaults (relayed connections are limited)
//   --reserve  reserve a slot on that relay (listen on RELAY/p2p-circuit) and print the circuit address
//   --dcutr-loopback  let DCUtR use loopback addresses (see below)
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { createHash } from 'node:crypto'
import readline from 'node:readline'

const ECHO = '/dsd/echo/1.0.0'
const relay = process.argv.includes('--relay')
const reserveArg = process.argv.indexOf('--reserve')
const reserveOn = reserveArg > 0 ? process.argv[reserveArg + 1] : undefined

// DCUtR offers and dials only public addresses, and on loopback every address is private: a test of
// the protocol itself (not of js's address selection) lets js take non-relay TCP addresses as they are
if (process.argv.includes('--dcutr-loopback')) {
  const { DefaultDCUtRService } = await import('./node_modules/@libp2p/dcutr/dist/src/dcutr.js')
  DefaultDCUtRService.prototype.getDialableMultiaddrs = function (addrs) {
    const out = []
    for (const a of addrs) {
      try {
        const ma = multiaddr(a)
        if (!ma.toString().includes('/p2p-circuit') && ma.toString().includes('/tcp/')) out.push(ma)
      } catch {}
    }
    return out
  }
}

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...(reserveOn ? [reserveOn + '/p2p-circuit'] : [])] },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // loopback: dsd's relay addresses are 127.0.0.1, which js would otherwise refuse to dial
  connectionGater: { denyDialMultiaddr: () => false },
  services: {
    identify: identify(),
    ping: ping(),
    dcutr: dcutr(),
    ...(relay ? { relay: circuitRelayServer() } : {})
  }
})

// relayed connections carry limits: the echo must be allowed on them, both ways
await node.handle(ECHO, async (stream) => {
  for await (const chunk of stream) {
    if (!stream.send(chunk.subarray ? chunk.subarray() : chunk)) {
      await stream.onDrain()
    }
  }
  await stream.close()
}, { maxInboundStreams: 64, runOnLimitedConnection: true })

async function echo (peer, n) {
  // over the connection we have, relayed (limited) or not: js dials only for an unlimited one, and a
  // peer reached through a relay may have told us no address we could dial
  const conn = node.getConnections(peerIdFromString(peer))[0]
  const stream = conn != null
    ? await conn.newStream(ECHO, { runOnLimitedConnection: true })
    : await node.dialProtocol(peerIdFromString(peer), ECHO, { runOnLimitedConnection: true })
  const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff)
  const sent = createHash('sha256').update(data).digest('hex')
  const reading = (async () => {
    const h = createHash('sha256')
    let got = 0
    for await (const chunk of stream) {
      const b = chunk.subarray ? chunk.subarray() : chunk
      h.update(b)
      got += b.length
    }
    return { got, hash: h.digest('hex') }
  })()
  for (let off = 0; off < n; off += 65536) {
    if (!stream.send(data.subarray(off, Math.min(n, off + 65536)))) {
      await stream.onDrain()
    }
  }
  await stream.close()
  const r = await reading
  return { match: r.got === n && r.hash === sent, received: r.got }
}

async function circuitAddrs () {
  for (let i = 0; i < 100; i++) {
    const c = node.getMultiaddrs().map(a => a.toString()).filter(a => a.includes('/p2p-circuit'))
    if (c.length > 0) return c
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('no reservation: no /p2p-circuit address after 10 s')
}

async function run (cmd) {
  switch (cmd.cmd) {
    case 'dial': {
      const conn = await node.dial(multiaddr(cmd.addr))
      return { peer: conn.remotePeer.toString(), limited: conn.limits != null, addr: conn.remoteAddr.toString() }
    }
    case 'ping':
      return { rtt: await node.services.ping.ping(peerIdFromString(cmd.peer), { runOnLimitedConnection: true }) }
    case 'echo':
      return await echo(cmd.peer, cmd.bytes)
    case 'circuit':
      return { addrs: await circuitAddrs() }
    case 'connections':
      return { connections: node.getConnections().map(c => ({ peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction, limited: c.limits != null })) }
    case 'quit':
      await node.stop()
      process.exit(0)
    default:
      throw new Error('unknown command ' + cmd.cmd)
  }
}

console.log(JSON.stringify({ event: 'ready', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(a => a.toString()) }))
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let cmd
  try {
    cmd = JSON.parse(line)
    const result = await run(cmd)
    console.log(JSON.stringify({ id: cmd.id, ok: true, ...result }))
  } catch (e) {
    console.log(JSON.stringify({ id: cmd?.id, ok: false, error: String(e?.stack ?? e) }))
  }
})
rl.on('close', () => { node.stop().then(() => process.exit(0)) })
