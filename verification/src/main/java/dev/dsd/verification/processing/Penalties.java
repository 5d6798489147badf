package dev.dsd.verification.processing;

/**
 * History-dependent logits processors a request can ask for, applied to the target's logits before
 * temperature, top-p, acceptance and logprobs, so every consumer of a distribution sees the same one.
 *
 * <ul>
 *   <li>{@code repetition} (Hugging Face {@code repetition_penalty}, Keskar et al. 2019): every token
 *       that occurs anywhere in prompt + output has its logit divided by it when positive and
 *       multiplied by it when negative. 1 is off; above 1 discourages repeats.</li>
 *   <li>{@code presence} and {@code frequency} (OpenAI): {@code logit -= frequency * c + presence * (c > 0)}
 *       where c counts the token in the generated output only (the prompt is not counted, as in
 *       OpenAI's and vLLM's implementations). 0 is off; OpenAI bounds both to [-2, 2].</li>
 * </ul>
 *
 * Repetition is applied first, then frequency and presence, the order vLLM uses.
 */
public record Penalties(double repetition, double presence, double frequency) {
  public static final Penalties NONE = new Penalties(1, 0, 0);
  /** OpenAI's bound on presence and frequency penalties. */
  public static final double MAX_OPENAI_PENALTY = 2;

  public Penalties {
    if (!(repetition > 0) || Double.isInfinite(repetition)) {
      throw new IllegalArgumentException("repetition_penalty must be a finite number > 0, got " + repetition);
    }
    if (!(Math.abs(presence) <= MAX_OPENAI_PENALTY)) {
      throw new IllegalArgumentException("presence_penalty must be in [-2, 2], got " + presence);
    }
    if (!(Math.abs(frequency) <= MAX_OPENAI_PENALTY)) {
      throw new IllegalArgumentException("frequency_penalty must be in [-2, 2], got " + frequency);
    }
  }

  /** Whether any penalty changes logits (then the token history must reach where logits are processed). */
  public boolean active() {
    return repetition != 1 || presence != 0 || frequency != 0;
  }

  /** One logit of a token seen {@code inContext} times in prompt + output, {@code inOutput} of them generated. */
  float apply(float logit, int inContext, int inOutput) {
    float l = logit;
    if (inContext > 0 && repetition != 1) {
      l = (float) (l < 0 ? l * repetition : l / repetition);
    }
    if (inOutput > 0) {
      l = (float) (l - frequency * inOutput - presence);
    }
    return l;
  }
}
