package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationResult;

/**
 * {@code /v1/chat/completions}: a {@code chat.completion} whose choice holds the assistant's
 * {@code message}; streamed as {@code chat.completion.chunk}s whose {@code delta} first names the
 * role, then carries content, and is empty in the chunk with the {@code finish_reason}.
 */
final class ChatCompletionFormat extends CompletionFormat {
  ChatCompletionFormat(String model) {
    super("chatcmpl-", model);
  }

  @Override
  ObjectNode response(GenerationResult r) {
    ObjectNode o = envelope("chat.completion");
    ObjectNode c = o.putArray("choices").addObject();
    c.put("index", 0);
    c.putObject("message").put("role", ChatMessage.ASSISTANT).put("content", r.text());
    c.putNull("logprobs");
    c.put("finish_reason", r.finishReason());
    o.set("usage", usage(r));
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  ObjectNode opening() {
    ObjectNode o = envelope(chunkObject());
    choice(o, null).putObject("delta").put("role", ChatMessage.ASSISTANT).put("content", "");
    return o;
  }

  @Override
  ObjectNode piece(String text) {
    ObjectNode o = envelope(chunkObject());
    choice(o, null).putObject("delta").put("content", text);
    return o;
  }

  @Override
  ObjectNode finish(GenerationResult r) {
    ObjectNode o = envelope(chunkObject());
    choice(o, r.finishReason()).putObject("delta");
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  String chunkObject() {
    return "chat.completion.chunk";
  }

  private static ObjectNode choice(ObjectNode o, String finishReason) {
    ObjectNode c = o.putArray("choices").addObject();
    c.put("index", 0);
    c.putNull("logprobs");
    c.put("finish_reason", finishReason);
    return c;
  }
}
