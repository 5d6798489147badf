package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenChoice;
import java.util.List;

/**
 * {@code /v1/chat/completions}: a {@code chat.completion} whose choice holds the assistant's
 * {@code message}; streamed as {@code chat.completion.chunk}s whose {@code delta} first names the
 * role, then carries content, and is empty in the chunk with the {@code finish_reason}. Logprobs
 * are {@code {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}}.
 */
final class ChatCompletionFormat extends CompletionFormat {
  ChatCompletionFormat(String model, boolean logprobs) {
    super("chatcmpl-", model, logprobs);
  }

  @Override
  ObjectNode response(GenerationResult r) {
    ObjectNode o = envelope("chat.completion");
    ObjectNode c = o.putArray("choices").addObject();
    c.put("index", 0);
    c.putObject("message").put("role", ChatMessage.ASSISTANT).put("content", r.text());
    logprobs(c, r.logprobs());
    c.put("finish_reason", r.finishReason());
    o.set("usage", usage(r));
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  ObjectNode opening() {
    ObjectNode o = envelope(chunkObject());
    choice(o, null, List.of()).putObject("delta").put("role", ChatMessage.ASSISTANT).put("content", "");
    return o;
  }

  @Override
  ObjectNode piece(String text, List<TokenChoice> lps) {
    ObjectNode o = envelope(chunkObject());
    choice(o, null, lps).putObject("delta").put("content", text);
    return o;
  }

  @Override
  ObjectNode finish(GenerationResult r) {
    ObjectNode o = envelope(chunkObject());
    choice(o, r.finishReason(), List.of()).putObject("delta");
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  String chunkObject() {
    return "chat.completion.chunk";
  }

  private void logprobs(ObjectNode c, List<TokenChoice> lps) {
    if (!logprobs) {
      c.putNull("logprobs");
      return;
    }
    ObjectNode l = c.putObject("logprobs");
    var content = l.putArray("content");
    for (TokenChoice t : lps) {
      ObjectNode e = content.addObject().put("token", t.text()).put("logprob", t.logprob());
      e.set("bytes", bytes(t.text()));
      var top = e.putArray("top_logprobs");
      for (TokenChoice.Alternative a : t.top()) {
        top.addObject().put("token", a.text()).put("logprob", a.logprob()).set("bytes", bytes(a.text()));
      }
    }
    l.putNull("refusal");
  }

  private ObjectNode choice(ObjectNode o, String finishReason, List<TokenChoice> lps) {
    ObjectNode c = o.putArray("choices").addObject();
    c.put("index", 0);
    logprobs(c, lps);
    c.put("finish_reason", finishReason);
    return c;
  }
}
