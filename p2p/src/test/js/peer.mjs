// A js-libp2p peer for dsd's interop tests. Prints {"event":"ready",...} with its peer id and
// addresses, then answers one JSON command per stdin line with one JSON line on stdout.
// Run: node --import ./polyfill.mjs peer.mjs [--swarm-key FILE]
// With --swarm-key the peer joins that private network (@libp2p/pnet, PSK v1, base16 key file).
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { autoNAT } from '@libp2p/autonat'
import { pbStream } from '@libp2p/utils'
// js's own codec for AutoNAT v1 messages (the package exports only its service)
import { Message as AutoNatMessage } from './node_modules/@libp2p/autonat/dist/src/pb/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import readline from 'node:readline'

const ECHO = '/dsd/echo/1.0.0'
void removePrivateAddressesMapper // loopback tests keep loopback addresses: passthroughMapper

const keyArg = process.argv.indexOf('--swarm-key')
const swarmKey = keyArg > 0 ? readFileSync(process.argv[keyArg + 1]) : undefined
// js's connection monitor pings every connection every 10 s through the ping service, whose limit is
// one outbound stream per connection: a test counting its own pings turns it off
const noMonitor = process.argv.includes('--no-connection-monitor')

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  ...(swarmKey ? { connectionProtector: preSharedKey({ psk: swarmKey }) } : {}),
  ...(noMonitor ? { connectionMonitor: { enabled: false } } : {}),
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    autoNAT: autoNAT(),
    dht: kadDHT({ clientMode: false, peerInfoMapper: passthroughMapper, protocol: '/ipfs/kad/1.0.0' })
  }
})

await node.handle(ECHO, async (stream) => {
  for await (const chunk of stream) {
    if (!stream.send(chunk.subarray ? chunk.subarray() : chunk)) {
      await stream.onDrain()
    }
  }
  await stream.close()
}, { maxInboundStreams: 64 })

function bytes (n, seed) {
  // xorshift32: deterministic filler, checked by hashing on both ends of the echo
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

async function echo (peer, n, seed) {
  const stream = await node.dialProtocol(peerIdFromString(peer), ECHO)
  const data = bytes(n, seed)
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

async function cidOf (key) {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(key)))
}

async function run (cmd) {
  switch (cmd.cmd) {
    case 'dial': {
      const conn = await node.dial(multiaddr(cmd.addr))
      return { peer: conn.remotePeer.toString() }
    }
    case 'ping':
      return { rtt: await node.services.ping.ping(peerIdFromString(cmd.peer)) }
    case 'pings': {
      // several pings, one after another, on whatever connection is open
      const rtts = []
      for (let i = 0; i < cmd.count; i++) rtts.push(await node.services.ping.ping(peerIdFromString(cmd.peer)))
      return { rtts }
    }
    case 'closestPeers': {
      // repeated FIND_NODE lookups; each asks every peer in the table once
      let answers = 0
      for (let i = 0; i < cmd.count; i++) {
        for await (const e of node.services.dht.getClosestPeers(new TextEncoder().encode(cmd.key + i), { signal: AbortSignal.timeout(10000) })) {
          if (e.name === 'PEER_RESPONSE') answers++
        }
      }
      return { answers }
    }
    case 'autonatAsk': {
      // an AutoNAT v1 dial request in js's encoding, about this node's own listen addresses
      const stream = await node.dialProtocol(peerIdFromString(cmd.peer), '/libp2p/autonat/1.0.0')
      const messages = pbStream(stream).pb(AutoNatMessage)
      await messages.write({
        type: AutoNatMessage.MessageType.DIAL,
        dial: { peer: { id: node.peerId.toMultihash().bytes, addrs: node.getMultiaddrs().map(a => a.decapsulateCode(421).bytes) } }
      })
      const answer = await messages.read({ signal: AbortSignal.timeout(20000) })
      await stream.close()
      const r = answer.dialResponse ?? {}
      return {
        type: answer.type,
        status: r.status,
        text: r.statusText ?? '',
        addr: r.addr == null ? null : multiaddr(r.addr).toString()
      }
    }
    case 'streams': {
      // what js holds open to a peer: one entry per connection, with its streams' protocols
      const conns = node.getConnections(peerIdFromString(cmd.peer))
      return { connections: conns.map(c => ({ id: c.id, status: c.status, streams: c.streams.map(s => s.protocol ?? '') })) }
    }
    case 'routingTable': {
      // whether js's DHT has added the peer; kad-dht pings a new contact before adding it
      const found = await node.services.dht.routingTable.find(peerIdFromString(cmd.peer))
      return { contains: found != null, size: node.services.dht.routingTable.size }
    }
    case 'identify': {
      // identify runs on connect; wait until the peer store has the remote's protocols
      const id = peerIdFromString(cmd.peer)
      for (let i = 0; i < 100; i++) {
        try {
          const p = await node.peerStore.get(id)
          if (p.protocols.length > 0) {
            return { protocols: p.protocols, addrs: p.addresses.map(a => a.multiaddr.toString()) }
          }
        } catch {}
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      throw new Error('no identify result for ' + cmd.peer)
    }
    case 'echo':
      return await echo(cmd.peer, cmd.bytes, cmd.seed)
    case 'provide':
      await node.contentRouting.provide(await cidOf(cmd.key))
      return { cid: (await cidOf(cmd.key)).toString() }
    case 'findProviders': {
      const found = []
      for await (const p of node.contentRouting.findProviders(await cidOf(cmd.key), { signal: AbortSignal.timeout(cmd.timeoutMs ?? 10000) })) {
        found.push(p.id.toString())
        if (found.includes(cmd.want)) break
      }
      return { providers: found }
    }
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
