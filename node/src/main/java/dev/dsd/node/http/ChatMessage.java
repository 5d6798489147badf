package dev.dsd.node.http;

/**
 * One turn of a chat, its role normalised to {@code system}, {@code user} or {@code assistant}
 * (OpenAI's {@code developer} role is a system turn).
 */
public record ChatMessage(String role, String content) {
  public static final String SYSTEM = "system";
  public static final String USER = "user";
  public static final String ASSISTANT = "assistant";

  public ChatMessage {
    if (!role.equals(SYSTEM) && !role.equals(USER) && !role.equals(ASSISTANT)) {
      throw new IllegalArgumentException("chat role must be system, user or assistant, got " + role);
    }
  }
}
