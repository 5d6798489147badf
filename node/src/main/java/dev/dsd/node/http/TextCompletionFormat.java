package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationResult;

/**
 * {@code /v1/completions}: {@code text_completion} objects whose choices carry {@code text}, in
 * the response and in every chunk alike.
 */
final class TextCompletionFormat extends CompletionFormat {
  TextCompletionFormat(String model) {
    super("cmpl-", model);
  }

  @Override
  ObjectNode response(GenerationResult r) {
    ObjectNode o = envelope("text_completion");
    choice(o, r.text(), r.finishReason());
    o.set("usage", usage(r));
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  ObjectNode opening() {
    return null;
  }

  @Override
  ObjectNode piece(String text) {
    ObjectNode o = envelope(chunkObject());
    choice(o, text, null);
    return o;
  }

  @Override
  ObjectNode finish(GenerationResult r) {
    ObjectNode o = envelope(chunkObject());
    choice(o, "", r.finishReason());
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  String chunkObject() {
    return "text_completion";
  }

  private static void choice(ObjectNode o, String text, String finishReason) {
    ObjectNode c = o.putArray("choices").addObject();
    c.put("text", text);
    c.put("index", 0);
    c.putNull("logprobs");
    c.put("finish_reason", finishReason);
  }
}
