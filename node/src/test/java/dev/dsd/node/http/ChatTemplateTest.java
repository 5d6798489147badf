package dev.dsd.node.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Templates are rendered as Hugging Face's apply_chat_template(add_generation_prompt=True) renders
 * them: by Jinjava from the template itself, or by the family renderer where Jinjava cannot.
 */
class ChatTemplateTest {
  @TempDir Path tmp;

  // Qwen2-Instruct's template, as it reads after JSON decoding (\n is still a Jinja escape).
  static final String QWEN2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
      + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
      + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      + "{{ '<|im_start|>assistant\\n' }}{% endif %}";
  static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      + "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
      + "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
      + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  // The parts of Llama 3.1's template that decide the system turn.
  static final String LLAMA31 = "{{- bos_token }}\n{%- if not date_string is defined %}\n"
      + "    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
      + "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
      + "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n";
  static final String LLAMA32 = LLAMA31.replace("{%- set date_string = \"26 Jul 2024\" %}",
      "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}"
          + "{%- else %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}");
  // Mistral-7B-Instruct-v0.1's template: no system role, strict alternation, raise_exception otherwise.
  static final String MISTRAL = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
      + "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
      + "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
      + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}"
      + "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
  static final LocalDate DAY = LocalDate.of(2025, 3, 5);

  static List<ChatMessage> chat(String... roleContent) {
    ChatMessage[] m = new ChatMessage[roleContent.length / 2];
    for (int i = 0; i < m.length; i++) {
      m[i] = new ChatMessage(roleContent[2 * i], roleContent[2 * i + 1]);
    }
    return List.of(m);
  }

  @Test
  void chatmlWithTheTemplatesDefaultSystemTurn() throws Exception {
    ObjectNode config = new ObjectMapper().createObjectNode().put("chat_template", QWEN2).put("bos_token", (String) null);
    new ObjectMapper().writeValue(tmp.resolve("tokenizer_config.json").toFile(), config);
    ChatTemplate t = ChatTemplate.load(tmp);
    assertEquals(ChatTemplate.Family.CHATML, t.family());
    assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        + "<|im_start|>assistant\n", t.render(chat("user", "Hi")));
    assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        + "Hello<|im_end|>\n<|im_start|>user\n Bye <|im_end|>\n<|im_start|>assistant\n",
        t.render(chat("system", "Be brief.", "user", "Hi", "assistant", "Hello", "user", " Bye ")));
    assertEquals(List.of("<|im_end|>"), t.stopStrings());
  }

  @Test
  void chatmlWithoutADefaultSystemTurn() {
    ChatTemplate t = ChatTemplate.parse(CHATML, null, DAY);
    assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.render(chat("user", "Hi")));
  }

  @Test
  void llama3StripsContentAndStartsWithBos() {
    ChatTemplate t = ChatTemplate.parse(LLAMA3, "<|begin_of_text|>", DAY);
    assertEquals(ChatTemplate.Family.LLAMA3, t.family());
    assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        t.render(chat("system", " Be brief. ", "user", "Hi\n")));
    assertEquals(List.of("<|eot_id|>"), t.stopStrings());
  }

  @Test
  void llama31AlwaysWritesTheKnowledgeDateSystemTurn() {
    ChatTemplate t = ChatTemplate.parse(LLAMA31, "<|begin_of_text|>", DAY);
    assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        + "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(chat("user", "Hi")));
    assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        + "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(chat("system", "Be brief.\n", "user", "Hi")));
  }

  @Test
  void llama32DatesThePromptToday() {
    ChatTemplate t = ChatTemplate.parse(LLAMA32, "<|begin_of_text|>", DAY);
    assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        + "Today Date: 05 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(chat("user", "Hi")));
  }

  @Test
  void namedTemplatesAndTokenObjectsAreRead() throws Exception {
    ObjectMapper json = new ObjectMapper();
    ObjectNode config = json.createObjectNode();
    config.putArray("chat_template").add(json.createObjectNode().put("name", "tool_use").put("template", CHATML))
        .add(json.createObjectNode().put("name", "default").put("template", LLAMA3));
    config.putObject("bos_token").put("content", "<|begin_of_text|>").put("special", true);
    json.writeValue(tmp.resolve("tokenizer_config.json").toFile(), config);
    ChatTemplate t = ChatTemplate.load(tmp);
    assertEquals(ChatTemplate.Family.LLAMA3, t.family());
    assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(chat("user", "Hi")));
  }

  @Test
  void anythingElseIsThePlainTemplate() {
    ChatTemplate mistral = ChatTemplate.parse("{{ bos_token }}{% for message in messages %}[INST] {{ message['content'] }}"
        + " [/INST]{% endfor %}", "<s>", DAY);
    ChatTemplate none = ChatTemplate.load(tmp);
    ChatTemplate noDir = ChatTemplate.load(null);
    for (ChatTemplate t : List.of(mistral, none, noDir)) {
      assertEquals(ChatTemplate.Family.PLAIN, t.family());
      assertEquals("System: S\n\nUser: U\n\nAssistant: A\n\nUser: V\n\nAssistant:",
          t.render(chat("system", "S", "user", "U", "assistant", "A", "user", "V")));
      assertEquals(List.of("\nUser:"), t.stopStrings());
    }
  }

  @Test
  void aModelsOwnTemplateIsRenderedAsItIs() {
    ChatTemplate t = ChatTemplate.of(MISTRAL, "<s>", "</s>", DAY);
    assertEquals("<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]", t.render(chat("user", "Hi", "assistant", "Hello",
        "user", "Bye")));
    assertEquals(List.of(), t.stopStrings(), "the model ends its turn with its end-of-sequence token");
  }

  @Test
  void aConversationTheTemplateRefusesIsRefusedWithItsReason() {
    ChatTemplate t = ChatTemplate.of(MISTRAL, "<s>", "</s>", DAY);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> t.render(chat("system", "S", "user", "U")));
    assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    assertEquals("<s>[INST] U [/INST]", t.render(chat("user", "U")), "and the next conversation renders");
  }

  @Test
  void jinjavaAndTheFamilyRenderersAgree() {
    List<List<ChatMessage>> chats = List.of(chat("user", "Hi"), chat("system", " Be brief. ", "user", "Hi\n"),
        chat("system", "S", "user", "U", "assistant", "A", "user", " V "));
    for (String template : List.of(QWEN2, CHATML, LLAMA3)) {
      ChatTemplate jinja = ChatTemplate.of(template, "<|begin_of_text|>", "<|eot_id|>", DAY);
      ChatTemplate family = ChatTemplate.parse(template, "<|begin_of_text|>", DAY);
      assertEquals(family.family(), jinja.family());
      assertEquals(family.stopStrings(), jinja.stopStrings());
      for (List<ChatMessage> c : chats) {
        assertEquals(family.render(c), jinja.render(c), template);
      }
    }
  }

  @Test
  void strftimeNowIsTheDayTheTemplateIsFor() {
    String rendered = ChatTemplate.of(LLAMA32, "<|begin_of_text|>", null, DAY).render(chat("user", "Hi"));
    assertTrue(rendered.contains("Today Date: 05 Mar 2025\n"), rendered);
    assertEquals("05 Mar 2025, Wednesday, 100%", JinjaChatTemplate.strftime("%d %b %Y, %A, 100%%", DAY));
  }

  @Test
  void aTemplateJinjavaCannotRenderFallsBackToItsFamily() {
    // Python string methods are not Jinja: Qwen3's template calls .startswith and .split
    String python = CHATML + "{% if messages[0]['content'].startswith('x') %}{% endif %}";
    ChatTemplate t = ChatTemplate.of(python, null, null, DAY);
    assertEquals(ChatTemplate.Family.CHATML, t.family());
    assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.render(chat("user", "Hi")));
    assertEquals("<|im_start|>user\nHo<|im_end|>\n<|im_start|>assistant\n", t.render(chat("user", "Ho")));
  }
}
