package dev.dsd.node.http;

import dev.dsd.node.generate.GenerationRequest;

/**
 * A completion or chat completion request, checked and translated for the {@code Generator}.
 *
 * @param chat true for {@code /v1/chat/completions}, false for {@code /v1/completions}
 * @param generation what to generate (for chat, the prompt is the rendered conversation)
 * @param stream answer as server-sent events
 * @param includeUsage streaming only: send a last chunk with {@code usage} ({@code stream_options.include_usage})
 */
record ApiRequest(boolean chat, GenerationRequest generation, boolean stream, boolean includeUsage) {}
