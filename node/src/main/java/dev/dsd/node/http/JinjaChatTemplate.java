package dev.dsd.node.http;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A model's own Jinja {@code chat_template}, rendered by Jinjava as Hugging Face's
 * {@code apply_chat_template(messages, add_generation_prompt=True)} renders it: the variables
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and the
 * functions {@code raise_exception} and {@code strftime_now} that transformers provides.
 *
 * <p>Jinjava is Jinja2 for Java, not Python: templates that call Python string methods
 * ({@code .startswith}, {@code .split}, ...), as Qwen3's does, fail to render here; the caller then
 * falls back to the family renderer in {@link ChatTemplate}.
 */
final class JinjaChatTemplate {
  private static final String TODAY = "__dsd_today";
  private static final ThreadLocal<String> RAISED = new ThreadLocal<>();
  private static final Jinjava JINJA = jinja();

  private final String template;
  private final String bos;
  private final String eos;
  private final LocalDate today;

  /** Thrown when the template itself refuses the conversation through {@code raise_exception}. */
  static final class Refused extends IllegalArgumentException {
    Refused(String message) {
      super(message);
    }
  }

  /** Thrown when the template uses something Jinjava cannot render. */
  static final class Unsupported extends RuntimeException {
    Unsupported(String message) {
      super(message);
    }
  }

  JinjaChatTemplate(String template, String bos, String eos, LocalDate today) {
    this.template = template;
    this.bos = bos == null ? "" : bos;
    this.eos = eos == null ? "" : eos;
    this.today = today;
  }

  String render(List<ChatMessage> messages) {
    List<Map<String, Object>> list = new ArrayList<>();
    for (ChatMessage m : messages) {
      Map<String, Object> one = new LinkedHashMap<>();
      one.put("role", m.role());
      one.put("content", m.content());
      list.add(one);
    }
    Map<String, Object> vars = new HashMap<>();
    vars.put("messages", list);
    vars.put("add_generation_prompt", true);
    vars.put("bos_token", bos);
    vars.put("eos_token", eos);
    vars.put("strftime_now", true); // so that `strftime_now is defined` holds, as in transformers
    vars.put(TODAY, today);
    RAISED.remove();
    RenderResult r;
    try {
      r = JINJA.renderForResult(template, vars);
    } catch (RuntimeException e) {
      throw new Unsupported("the chat template could not be rendered: " + e.getMessage());
    }
    String raised = RAISED.get();
    RAISED.remove();
    if (raised != null) {
      throw new Refused("the model's chat template refuses these messages: " + raised);
    }
    for (TemplateError e : r.getErrors()) {
      if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw new Unsupported("the chat template could not be rendered: " + e.getMessage()
            + (e.getFieldName() == null ? "" : " at " + e.getFieldName()));
      }
    }
    return r.getOutput();
  }

  private static Jinjava jinja() {
    Jinjava j = new Jinjava(JinjavaConfig.newBuilder().withFailOnUnknownTokens(false).build());
    j.getGlobalContext().registerFunction(
        new ELFunctionDefinition("", "raise_exception", JinjaChatTemplate.class, "raiseException", String.class));
    j.getGlobalContext().registerFunction(
        new ELFunctionDefinition("", "strftime_now", JinjaChatTemplate.class, "strftimeNow", String.class));
    return j;
  }

  /** transformers' {@code raise_exception}: the message is kept, rendering stops. */
  public static String raiseException(String message) {
    RAISED.set(message);
    throw new IllegalStateException(message);
  }

  /** transformers' {@code strftime_now(format)}, on the day this template was made for. */
  public static String strftimeNow(String format) {
    Object day = JinjavaInterpreter.getCurrent().getContext().get(TODAY);
    LocalDate d = day instanceof LocalDate ld ? ld : LocalDate.now();
    return strftime(format, d);
  }

  /** The date directives of Python's strftime; anything else is copied as it is. */
  static String strftime(String format, LocalDate d) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 == format.length()) {
        s.append(c);
        continue;
      }
      char f = format.charAt(++i);
      String pattern = switch (f) {
        case 'd' -> "dd";
        case 'b' -> "MMM";
        case 'B' -> "MMMM";
        case 'm' -> "MM";
        case 'Y' -> "yyyy";
        case 'y' -> "yy";
        case 'a' -> "EEE";
        case 'A' -> "EEEE";
        case 'j' -> "DDD";
        default -> null;
      };
      if (pattern != null) {
        s.append(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH).format(d));
      } else if (f == '%') {
        s.append('%');
      } else {
        s.append('%').append(f);
      }
    }
    return s.toString();
  }
}
