package dev.dsd.node.client;

import dev.dsd.node.client.proto.Chunk;
import dev.dsd.node.client.proto.Done;
import dev.dsd.node.client.proto.GenerateMessage;
import dev.dsd.node.client.proto.GenerateRequest;
import dev.dsd.node.entry.GenerationQueue;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.TokenChoice;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.host.NettyHost;
import java.util.concurrent.Executor;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves {@code /dsd/generate/1.0.0}: any node takes a client's prompt, coordinates it as the
 * entry and streams the accepted text back. A client that goes away cancels its generation.
 */
public final class GenerateService {
  private static final Logger log = LoggerFactory.getLogger(GenerateService.class);
  public static final String ID = "/dsd/generate/1.0.0";
  public static final int MAX_FRAME_BYTES = 4 << 20;
  static final MessageStream.Codec<GenerateMessage> CODEC = new MessageStream.Codec<>(GenerateMessage.parser(),
      MAX_FRAME_BYTES, (limit, msg) -> GenerateMessage.newBuilder().setError(msg).build());

  /**
   * @param queue where requests wait for a generation slot; a client refused because it is full
   *     gets an error saying so
   * @param generators the generator for a model id ("" = the swarm's only model)
   */
  public GenerateService(NettyHost host, Executor pool, GenerationQueue queue, Function<String, Generator> generators) {
    host.setStreamHandler(ID, st -> MessageStream.attach(st, CODEC, pool, new MessageStream.Listener<>() {
      private volatile boolean gone;

      @Override
      public void onMessage(MessageStream<GenerateMessage> s, GenerateMessage m) {
        if (!m.hasRequest()) {
          s.send(GenerateMessage.newBuilder().setError("expected a generate request, got " + m.getBodyCase()).build());
          s.close();
          return;
        }
        GenerateRequest r = m.getRequest();
        boolean queued = queue.trySubmit(() -> {
          try {
            serve(s, r);
          } finally {
            s.close();
          }
        });
        if (!queued) {
          s.send(GenerateMessage.newBuilder().setError("busy: all " + queue.capacity() + " generation slots of this node "
              + "are taken and " + queue.maxWaiting() + " requests wait; retry in " + queue.retryAfterSeconds() + " s")
              .build());
          s.close();
        }
      }

      private void serve(MessageStream<GenerateMessage> s, GenerateRequest r) {
        if (gone || !s.isOpen()) {
          return; // the client left while it waited
        }
        try {
          Penalties penalties;
          try {
            penalties = new Penalties(r.getRepetitionPenalty() == 0 ? 1 : r.getRepetitionPenalty(),
                r.getPresencePenalty(), r.getFrequencyPenalty());
          } catch (IllegalArgumentException e) {
            throw new GenerationException(e.getMessage());
          }
          GenerationRequest req = new GenerationRequest(r.getPrompt(), r.getMaxTokens(), r.getTemperature(),
              r.getTopP() == 0 ? 1 : r.getTopP(), r.getSeed(), r.getSpeculation(), r.getAdaptive(), r.getStopList(),
              penalties, r.hasTopLogprobs() ? (int) Math.min(Integer.MAX_VALUE, r.getTopLogprobs() & 0xffffffffL)
                  : GenerationRequest.NO_LOGPROBS,
              weights(r.getWeights()), r.hasPipelined() ? r.getPipelined() : null,
              r.hasTree() ? r.getTree() : GenerationRequest.DEFAULT_TREE);
          log.info("client request peer={} promptChars={} maxTokens={} spec={}", s.remote(), r.getPrompt().length(),
              r.getMaxTokens(), r.getSpeculation());
          GenerationResult res = generators.apply(r.getModelId()).generate(req, (text, ids) -> {
            s.send(GenerateMessage.newBuilder().setChunk(Chunk.newBuilder().setText(text)).build());
            return !gone && s.isOpen();
          });
          Done.Builder d = Done.newBuilder().setText(res.text()).setPromptTokens(res.promptTokens())
              .setFinishReason(res.finishReason()).setSeconds(res.seconds()).setRounds(res.rounds())
              .setDrafted(res.draftedTokens()).setAccepted(res.acceptedTokens()).addAllRoute(res.route())
              .setBytesSent(res.bytesSent()).setFirstTokenSeconds(res.firstTokenSeconds());
          for (int id : res.tokenIds()) {
            d.addTokenIds(id);
          }
          for (TokenChoice t : res.logprobs()) {
            var lp = dev.dsd.node.client.proto.TokenLogprob.newBuilder().setToken(t.token()).setText(t.text())
                .setLogprob(t.logprob());
            t.top().forEach(a -> lp.addTop(dev.dsd.node.client.proto.Alternative.newBuilder().setToken(a.token())
                .setText(a.text()).setLogprob(a.logprob())));
            d.addLogprobs(lp);
          }
          s.send(GenerateMessage.newBuilder().setDone(d).build());
        } catch (GenerationException e) {
          s.send(GenerateMessage.newBuilder().setError(e.getMessage()).build());
        } catch (RuntimeException e) {
          log.warn("generation failed peer={}: {}", s.remote(), e.toString());
          s.send(GenerateMessage.newBuilder().setError("generation failed: " + e.getMessage()).build());
        }
      }

      @Override
      public void onClosed(MessageStream<GenerateMessage> s, Throwable cause) {
        gone = true;
      }
    }));
  }

  /** Empty: any one format; an unknown name is the client's mistake, told as such. */
  static WeightFormat weights(String wire) {
    try {
      return wire.isEmpty() ? null : WeightFormat.parse(wire);
    } catch (IllegalArgumentException e) {
      throw new GenerationException(e.getMessage());
    }
  }
}
