package dev.dsd.node.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;

/**
 * A request the API refuses, answered in OpenAI's error shape:
 *
 * <pre>{"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}</pre>
 *
 * The message goes to the client as is, so it says what was wrong and what is allowed.
 */
public final class ApiError extends RuntimeException {
  static final String INVALID_REQUEST = "invalid_request_error";
  static final String SERVER_ERROR = "server_error";

  private final HttpResponseStatus status;
  private final String type;
  private final String param;
  private final String code;
  private final HttpHeaders headers = new DefaultHttpHeaders();

  ApiError(HttpResponseStatus status, String type, String param, String code, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  /** 400 for a field that is missing, of the wrong type or out of range. */
  static ApiError invalid(String param, String message) {
    return new ApiError(HttpResponseStatus.BAD_REQUEST, INVALID_REQUEST, param, "invalid_value", message);
  }

  /** 400 for a field whose value dsd does not implement (e.g. {@code n > 1}). */
  static ApiError unsupported(String param, String message) {
    return new ApiError(HttpResponseStatus.BAD_REQUEST, INVALID_REQUEST, param, "unsupported_value", message);
  }

  /** 500 for a fault of dsd; the details go to the log, not to the client. */
  static ApiError internal(Throwable cause) {
    return new ApiError(HttpResponseStatus.INTERNAL_SERVER_ERROR, SERVER_ERROR, null, "internal_error",
        "internal error (" + cause.getClass().getSimpleName() + "); see the node's log");
  }

  /** A header the answer needs, e.g. {@code Allow} on 405 or {@code Retry-After} on 503. */
  ApiError withHeader(CharSequence name, Object value) {
    headers.set(name, value);
    return this;
  }

  HttpHeaders headers() {
    return headers;
  }

  public HttpResponseStatus status() {
    return status;
  }

  public String type() {
    return type;
  }

  public String param() {
    return param;
  }

  public String code() {
    return code;
  }

  public ObjectNode toJson() {
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    ObjectNode e = root.putObject("error");
    e.put("message", getMessage());
    e.put("type", type);
    e.put("param", param);
    e.put("code", code);
    return root;
  }
}
