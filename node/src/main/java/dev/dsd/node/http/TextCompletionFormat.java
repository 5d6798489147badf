package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenChoice;
import java.util.List;

/**
 * {@code /v1/completions}: {@code text_completion} objects whose choices carry {@code text}, in
 * the response and in every chunk alike. Logprobs take the legacy shape: parallel arrays
 * {@code tokens}, {@code token_logprobs}, {@code top_logprobs} (one token-to-logprob map per
 * token) and {@code text_offset} (character offset of each token in the completion).
 */
final class TextCompletionFormat extends CompletionFormat {
  private int offset; // characters of completion text the logprobs have described so far

  TextCompletionFormat(String model, boolean logprobs) {
    super("cmpl-", model, logprobs);
  }

  @Override
  ObjectNode response(GenerationResult r) {
    ObjectNode o = envelope("text_completion");
    choice(o, r.text(), r.finishReason(), r.logprobs());
    o.set("usage", usage(r));
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  ObjectNode opening() {
    return null;
  }

  @Override
  ObjectNode piece(String text, List<TokenChoice> lps) {
    ObjectNode o = envelope(chunkObject());
    choice(o, text, null, lps);
    return o;
  }

  @Override
  ObjectNode finish(GenerationResult r) {
    ObjectNode o = envelope(chunkObject());
    choice(o, "", r.finishReason(), List.of());
    o.set("dsd", dsd(r));
    return o;
  }

  @Override
  String chunkObject() {
    return "text_completion";
  }

  private void choice(ObjectNode o, String text, String finishReason, List<TokenChoice> lps) {
    ObjectNode c = o.putArray("choices").addObject();
    c.put("text", text);
    c.put("index", 0);
    if (logprobs) {
      ObjectNode l = c.putObject("logprobs");
      var tokens = l.putArray("tokens");
      var values = l.putArray("token_logprobs");
      var tops = l.putArray("top_logprobs");
      var offsets = l.putArray("text_offset");
      for (TokenChoice t : lps) {
        tokens.add(t.text());
        values.add(t.logprob());
        ObjectNode top = tops.addObject();
        t.top().forEach(a -> top.put(a.text(), a.logprob()));
        offsets.add(offset);
        offset += t.text().length();
      }
    } else {
      c.putNull("logprobs");
    }
    c.put("finish_reason", finishReason);
  }
}
