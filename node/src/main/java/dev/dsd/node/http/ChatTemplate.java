package dev.dsd.node.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns chat messages into one prompt. The model directory's {@code tokenizer_config.json} names a
 * Jinja {@code chat_template}, which is rendered as it is (by {@link JinjaChatTemplate}); a
 * conversation the template refuses ({@code raise_exception}) is a 400 with the template's reason.
 * Where Jinjava cannot render a template, the family is recognised by its markers and rendered as
 * its template does with {@code add_generation_prompt}:
 *
 * <ul>
 *   <li><b>ChatML</b> ({@code <|im_start|>}, e.g. Qwen2/2.5, SmolLM):
 *       <pre>&lt;|im_start|&gt;system\n{system}&lt;|im_end|&gt;\n&lt;|im_start|&gt;user\n{user}&lt;|im_end|&gt;\n&lt;|im_start|&gt;assistant\n</pre>
 *       A conversation without a system turn gets the template's literal default one, if it writes
 *       one (Qwen's "You are a helpful assistant."). Generation stops at {@code <|im_end|>}.
 *   <li><b>Llama 3</b> ({@code <|start_header_id|>}):
 *       <pre>{bos}&lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{content, stripped}&lt;|eot_id|&gt;...&lt;|start_header_id|&gt;assistant&lt;|end_header_id|&gt;\n\n</pre>
 *       Llama 3.1+ templates (those that write "Cutting Knowledge Date") always open with a system
 *       turn {@code "Cutting Knowledge Date: {cutoff}\nToday Date: {date}\n\n{system}"}; the date is
 *       today when the template calls {@code strftime_now} (3.2), else its literal
 *       {@code date_string} (3.1). Generation stops at {@code <|eot_id|>}.
 *   <li><b>Plain</b>, when there is no template or its family is not one of the above:
 *       <pre>System: {system}\n\nUser: {user}\n\nAssistant: {assistant}\n\nUser: {user}\n\nAssistant:</pre>
 *       Generation stops at {@code "\nUser:"} so that a base model does not write the user's next turn.
 * </ul>
 *
 * Pitfall: tool calls, images and template logic beyond these shapes (Qwen3's thinking blocks,
 * Llama's tool prompts) are not rendered.
 */
public final class ChatTemplate {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ChatTemplate.class);
  /** The families this class renders. */
  public enum Family { CHATML, LLAMA3, PLAIN }

  private static final Pattern CHATML_DEFAULT_SYSTEM =
      Pattern.compile("<\\|im_start\\|>system(?:\\\\n|\n)([^<'\"{}]+?)<\\|im_end\\|>");
  private static final Pattern LLAMA_CUTOFF = Pattern.compile("Cutting Knowledge Date: ([A-Za-z0-9 ]+)");
  private static final Pattern LLAMA_DATE = Pattern.compile("date_string = \"([^\"]+)\"");
  private static final DateTimeFormatter LLAMA_TODAY = DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH);

  private final Family family;
  private final String bos;
  private final String defaultSystem; // ChatML: literal system turn of the template, or null
  private final String knowledgePreamble; // Llama 3.1+: start of the system turn, or null
  private final JinjaChatTemplate jinja; // the model's own template, or null
  private volatile boolean jinjaFailed;

  private ChatTemplate(Family family, String bos, String defaultSystem, String knowledgePreamble,
      JinjaChatTemplate jinja) {
    this.family = family;
    this.bos = bos;
    this.defaultSystem = defaultSystem;
    this.knowledgePreamble = knowledgePreamble;
    this.jinja = jinja;
  }

  /** The plain template, for models without a chat template. */
  public static ChatTemplate plain() {
    return new ChatTemplate(Family.PLAIN, "", null, null, null);
  }

  /** Reads {@code modelDir/tokenizer_config.json}; plain when {@code modelDir} is null or has none. */
  public static ChatTemplate load(Path modelDir) {
    if (modelDir == null || !Files.isRegularFile(modelDir.resolve("tokenizer_config.json"))) {
      return plain();
    }
    Path file = modelDir.resolve("tokenizer_config.json");
    JsonNode config;
    try {
      config = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": not readable JSON: " + e.getMessage(), e);
    }
    return of(templateText(config.path("chat_template")), tokenText(config.path("bos_token")),
        tokenText(config.path("eos_token")), LocalDate.now());
  }

  /** The model's own Jinja template ({@code null} for none), with the family renderer behind it. */
  public static ChatTemplate of(String jinja, String bosToken, String eosToken, LocalDate today) {
    if (jinja == null) {
      return plain();
    }
    ChatTemplate family = parse(jinja, bosToken, today);
    return new ChatTemplate(family.family, family.bos, family.defaultSystem, family.knowledgePreamble,
        new JinjaChatTemplate(jinja, bosToken, eosToken, today));
  }

  /**
   * Recognises the family of a Jinja chat template ({@code null} for none) and renders by family
   * only; {@code today} dates Llama 3.2 prompts.
   */
  public static ChatTemplate parse(String jinja, String bosToken, LocalDate today) {
    if (jinja == null) {
      return plain();
    }
    String bos = jinja.contains("bos_token") && bosToken != null ? bosToken : "";
    if (jinja.contains("<|start_header_id|>")) {
      String preamble = null;
      Matcher cutoff = LLAMA_CUTOFF.matcher(jinja);
      if (cutoff.find()) {
        Matcher date = LLAMA_DATE.matcher(jinja);
        String day = jinja.contains("strftime_now") || !date.find() ? LLAMA_TODAY.format(today) : date.group(1);
        preamble = "Cutting Knowledge Date: " + cutoff.group(1).strip() + "\nToday Date: " + day + "\n\n";
      }
      return new ChatTemplate(Family.LLAMA3, bos, null, preamble, null);
    }
    if (jinja.contains("<|im_start|>")) {
      Matcher m = CHATML_DEFAULT_SYSTEM.matcher(jinja);
      return new ChatTemplate(Family.CHATML, bos, m.find() ? m.group(1).replace("\\n", "\n") : null, null, null);
    }
    return plain();
  }

  public Family family() {
    return family;
  }

  /** Text that ends the assistant's turn in this family, added to the request's stop strings. */
  public List<String> stopStrings() {
    switch (family) {
      case CHATML:
        return List.of("<|im_end|>");
      case LLAMA3:
        return List.of("<|eot_id|>");
      default:
        // a model with its own template of another family ends its turn with its end-of-sequence token
        return jinja != null ? List.of() : List.of("\nUser:");
    }
  }

  /**
   * The prompt for the assistant's next turn.
   *
   * @throws IllegalArgumentException when the model's template refuses the conversation
   */
  public String render(List<ChatMessage> messages) {
    if (jinja != null && !jinjaFailed) {
      try {
        return jinja.render(messages);
      } catch (JinjaChatTemplate.Unsupported e) {
        // the same template fails the same way every time: say so once, then use the family renderer
        jinjaFailed = true;
        LOG.warn("chat template not rendered by Jinjava ({}); using the {} renderer", e.getMessage(), family);
      }
    }
    switch (family) {
      case CHATML:
        return chatml(messages);
      case LLAMA3:
        return llama3(messages);
      default:
        return plainText(messages);
    }
  }

  private String chatml(List<ChatMessage> messages) {
    StringBuilder s = new StringBuilder(bos);
    if (defaultSystem != null && (messages.isEmpty() || !messages.get(0).role().equals(ChatMessage.SYSTEM))) {
      s.append("<|im_start|>system\n").append(defaultSystem).append("<|im_end|>\n");
    }
    for (ChatMessage m : messages) {
      s.append("<|im_start|>").append(m.role()).append('\n').append(m.content()).append("<|im_end|>\n");
    }
    return s.append("<|im_start|>assistant\n").toString();
  }

  private String llama3(List<ChatMessage> messages) {
    StringBuilder s = new StringBuilder(bos);
    List<ChatMessage> rest = messages;
    if (knowledgePreamble != null) {
      // 3.1+ folds the first system message into its own system turn and always writes that turn.
      String system = "";
      if (!messages.isEmpty() && messages.get(0).role().equals(ChatMessage.SYSTEM)) {
        system = messages.get(0).content().strip();
        rest = messages.subList(1, messages.size());
      }
      header(s, ChatMessage.SYSTEM).append(knowledgePreamble).append(system).append("<|eot_id|>");
    }
    for (ChatMessage m : rest) {
      header(s, m.role()).append(m.content().strip()).append("<|eot_id|>");
    }
    return header(s, ChatMessage.ASSISTANT).toString();
  }

  private static StringBuilder header(StringBuilder s, String role) {
    return s.append("<|start_header_id|>").append(role).append("<|end_header_id|>\n\n");
  }

  private static String plainText(List<ChatMessage> messages) {
    StringBuilder s = new StringBuilder();
    for (ChatMessage m : messages) {
      String who = m.role().equals(ChatMessage.SYSTEM) ? "System" : m.role().equals(ChatMessage.USER) ? "User" : "Assistant";
      s.append(who).append(": ").append(m.content()).append("\n\n");
    }
    return s.append("Assistant:").toString();
  }

  /** {@code chat_template} is a string, or a list of named templates of which "default" is the one for chat. */
  private static String templateText(JsonNode t) {
    if (t.isTextual()) {
      return t.asText();
    }
    if (t.isArray()) {
      for (JsonNode named : t) {
        if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
          return named.get("template").asText();
        }
      }
    }
    return null;
  }

  /** Special tokens appear either as a string or as an AddedToken object with {@code content}. */
  private static String tokenText(JsonNode t) {
    if (t.isTextual()) {
      return t.asText();
    }
    return t.path("content").isTextual() ? t.get("content").asText() : null;
  }
}
