package dev.dsd.node.client;

import dev.dsd.node.client.proto.GenerateMessage;
import dev.dsd.node.client.proto.GenerateRequest;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.TokenChoice;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A client of {@code /dsd/generate/1.0.0}: hands prompts to one peer of the swarm, which does the
 * work, and streams its text. The client is a libp2p peer of its own (a fresh identity, no
 * listening address), so it needs nothing from the swarm but the peer's address.
 */
public final class RemoteGenerator implements Generator {
  private final NettyHost host;
  private final PeerId peer;
  private final ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "dsd-client");
    t.setDaemon(true);
    return t;
  });
  private final Duration timeout;

  public RemoteGenerator(Multiaddr peerAddr, Duration timeout) {
    this.timeout = timeout;
    HostConfig c = HostConfig.loopback();
    this.host = new NettyHost(Identity.generate(), new HostConfig(List.of(), List.of(), c.maxConnections(),
        Duration.ofSeconds(10), c.maxBackoff(), "dsd-client/0.1.0")).start();
    try {
      Connection conn = host.connect(peerAddr).get(15, TimeUnit.SECONDS);
      this.peer = conn.remotePeer();
    } catch (Exception e) {
      host.close();
      pool.shutdownNow();
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new GenerationException("cannot reach peer " + peerAddr + ": " + cause.getMessage(), e);
    }
  }

  @Override
  public GenerationResult generate(GenerationRequest req, TokenSink sink) {
    LinkedBlockingQueue<GenerateMessage> inbox = new LinkedBlockingQueue<>();
    MessageStream<GenerateMessage> s;
    try {
      s = host.newStream(peer, List.of(GenerateService.ID), st -> { })
          .thenApply(st -> MessageStream.attach(st, GenerateService.CODEC, pool, new MessageStream.Listener<>() {
            @Override
            public void onMessage(MessageStream<GenerateMessage> ms, GenerateMessage m) {
              inbox.add(m);
            }

            @Override
            public void onClosed(MessageStream<GenerateMessage> ms, Throwable cause) {
              inbox.add(GenerateMessage.newBuilder().setError("peer " + peer + " closed the stream before the end")
                  .build());
            }
          })).get(15, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new GenerationException("peer " + peer + " does not take prompts (" + GenerateService.ID + "): "
          + (e.getCause() == null ? e : e.getCause()).getMessage(), e);
    }
    GenerateRequest.Builder rb = GenerateRequest.newBuilder().setPrompt(req.prompt())
        .setMaxTokens(req.maxTokens()).setTemperature(req.temperature()).setTopP(req.topP()).setSeed(req.seed())
        .setSpeculation(req.speculation()).setAdaptive(req.adaptiveVerification()).addAllStop(req.stop())
        .setWeights(req.weights() == null ? "" : req.weights().id())
        .setRepetitionPenalty(req.penalties().repetition()).setPresencePenalty(req.penalties().presence())
        .setFrequencyPenalty(req.penalties().frequency()).setTree(req.tree());
    if (req.logprobs() != GenerationRequest.NO_LOGPROBS) {
      rb.setTopLogprobs(req.logprobs());
    }
    if (req.pipelined() != null) {
      rb.setPipelined(req.pipelined());
    }
    s.send(GenerateMessage.newBuilder().setRequest(rb).build());
    StringBuilder text = new StringBuilder();
    try {
      while (true) {
        GenerateMessage m = inbox.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (m == null) {
          s.close();
          throw new GenerationException("no answer from peer " + peer + " within " + timeout.toSeconds() + " s");
        }
        switch (m.getBodyCase()) {
          case CHUNK -> {
            text.append(m.getChunk().getText());
            if (!sink.accept(m.getChunk().getText(), new int[0])) {
              s.close(); // the node sees the stream end and cancels, freeing every stage
              return new GenerationResult(text.toString(), new int[0], 0, "cancelled", 0, 0, 0, 0, List.of(), 0);
            }
          }
          case DONE -> {
            var d = m.getDone();
            return new GenerationResult(d.getText(), d.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray(),
                d.getPromptTokens(), d.getFinishReason(), d.getSeconds(), d.getRounds(), d.getDrafted(), d.getAccepted(),
                d.getRouteList(), d.getBytesSent(), d.getLogprobsList().stream().map(t -> new TokenChoice(t.getToken(),
                    t.getText(), t.getLogprob(), t.getTopList().stream().map(a -> new TokenChoice.Alternative(
                        a.getToken(), a.getText(), a.getLogprob())).toList())).toList(), d.getFirstTokenSeconds());
          }
          case ERROR -> throw new GenerationException("peer " + peer + ": " + m.getError());
          default -> throw new GenerationException("peer " + peer + " sent " + m.getBodyCase());
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new GenerationException("interrupted");
    }
  }

  @Override
  public void close() {
    host.close();
    pool.shutdownNow();
  }
}
