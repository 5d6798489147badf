package dev.dsd.node.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.io.IOException;

/** JSON in and out of the API, with one configured mapper. */
final class ApiJson {
  // Trailing garbage after the body's object is an error rather than silently ignored.
  private static final ObjectMapper MAPPER =
      JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

  private ApiJson() {}

  /** Compact UTF-8 JSON: no newline inside, as a server-sent event's data line requires. */
  static byte[] bytes(JsonNode node) {
    try {
      return MAPPER.writeValueAsBytes(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a JSON tree did not serialise: " + e.getMessage(), e);
    }
  }

  /** Parses a request body; 400 {@code invalid_json} when it is empty or not JSON. */
  static JsonNode parse(byte[] body) {
    if (body.length == 0) {
      throw ApiError.invalid(null, "the request body is empty; expected a JSON object");
    }
    try {
      return MAPPER.readTree(body);
    } catch (JsonProcessingException e) {
      throw invalidJson("the request body is not valid JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw invalidJson("the request body could not be read: " + e.getMessage());
    }
  }

  private static ApiError invalidJson(String message) {
    return new ApiError(HttpResponseStatus.BAD_REQUEST, ApiError.INVALID_REQUEST, null, "invalid_json", message);
  }
}
