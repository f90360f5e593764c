/**
 * How the host reads a platform's answer to a send, per the plugin's declared `send_result`, in the
 * platforms' real shapes (wire-formats B1.3 Telegram, B2 Discord, B3.4 WhatsApp/Graph, B4.5 Slack).
 */
import { describe, expect, test } from "bun:test";
import { parseRetryAfter, readSendResult, type PlatformAnswer } from "../../src/channels/send-result.ts";

const NOW = Date.parse("2025-06-01T12:00:00Z");
const json = (status: number, body: unknown, headers: Record<string, string> = {}): PlatformAnswer => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const read = (style: "http" | "json_ok", res: PlatformAnswer) => readSendResult(style, res, NOW);

describe("telegram (json_ok)", () => {
  test("a sent message is delivered", () => {
    expect(read("json_ok", json(200, { ok: true, result: { message_id: 42 } }))).toEqual({ ok: true });
  });
  test("403 bot blocked, 400 chat not found and 401 are permanent", () => {
    expect(
      read("json_ok", json(403, { ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" })),
    ).toEqual({
      ok: false,
      error: "HTTP 403: Forbidden: bot was blocked by the user",
      permanent: true,
    });
    expect(
      read("json_ok", json(400, { ok: false, error_code: 400, description: "Bad Request: chat not found" })),
    ).toMatchObject({ permanent: true });
    expect(read("json_ok", json(401, { ok: false, error_code: 401, description: "Unauthorized" }))).toMatchObject({
      permanent: true,
    });
  });
  test("429 with parameters.retry_after is transient with the hint", () => {
    expect(
      read(
        "json_ok",
        json(429, {
          ok: false,
          error_code: 429,
          description: "Too Many Requests: retry after 5",
          parameters: { retry_after: 5 },
        }),
      ),
    ).toEqual({
      ok: false,
      error: "HTTP 429: Too Many Requests: retry after 5",
      permanent: false,
      retry_after_ms: 5000,
    });
  });
  test("a 200 saying ok:false is refused, classified by its error_code", () => {
    expect(read("json_ok", json(200, { ok: false, error_code: 403, description: "Forbidden" }))).toEqual({
      ok: false,
      error: "HTTP 200, ok: false (403): Forbidden",
      permanent: true,
    });
    expect(read("json_ok", json(200, { ok: false, error_code: 502, description: "Bad Gateway" }))).toMatchObject({
      permanent: false,
    });
  });
  test("5xx is transient", () => {
    expect(
      read("json_ok", json(500, { ok: false, error_code: 500, description: "Internal Server Error" })),
    ).toMatchObject({ permanent: false });
  });
});

describe("slack (json_ok)", () => {
  test("errors on HTTP 200: request and credential errors are permanent", () => {
    for (const error of [
      "channel_not_found",
      "not_in_channel",
      "is_archived",
      "invalid_auth",
      "account_inactive",
      "token_revoked",
      "msg_too_long",
    ]) {
      expect(read("json_ok", json(200, { ok: false, error }))).toEqual({
        ok: false,
        error: `HTTP 200, ok: false: ${error}`,
        permanent: true,
      });
    }
  });
  test("rate limits and server errors are transient; Retry-After is the hint", () => {
    for (const error of ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"]) {
      expect(read("json_ok", json(200, { ok: false, error }))).toMatchObject({ permanent: false });
    }
    expect(read("json_ok", json(200, { ok: false, error: "ratelimited" }, { "retry-after": "30" }))).toMatchObject({
      permanent: false,
      retry_after_ms: 30_000,
    });
    expect(read("json_ok", json(429, { ok: false, error: "ratelimited" }, { "retry-after": "3" }))).toEqual({
      ok: false,
      error: "HTTP 429: ratelimited",
      permanent: false,
      retry_after_ms: 3000,
    });
  });
  test("a posted message is delivered", () => {
    expect(read("json_ok", json(200, { ok: true, channel: "D024BE91L", ts: "1503435956.000247" }))).toEqual({
      ok: true,
    });
  });
});

describe("discord and whatsapp (http)", () => {
  test("discord 429 carries retry_after in the body, in float seconds", () => {
    expect(
      read("http", json(429, { message: "You are being rate limited.", retry_after: 1.337, global: false })),
    ).toEqual({
      ok: false,
      error: "HTTP 429: You are being rate limited.",
      permanent: false,
      retry_after_ms: 1337,
    });
  });
  test("discord 404 unknown webhook (an expired interaction token) is permanent", () => {
    expect(read("http", json(404, { message: "Unknown Webhook", code: 10015 }))).toEqual({
      ok: false,
      error: "HTTP 404: Unknown Webhook",
      permanent: true,
    });
  });
  test("graph errors: a bad token is permanent, rate-limit codes are transient whatever the status", () => {
    expect(
      read(
        "http",
        json(401, { error: { message: "Error validating access token", type: "OAuthException", code: 190 } }),
      ),
    ).toMatchObject({ permanent: true, error: "HTTP 401: Error validating access token" });
    expect(
      read(
        "http",
        json(400, {
          error: {
            message: "(#131030) Recipient phone number not in allowed list",
            type: "OAuthException",
            code: 131030,
          },
        }),
      ),
    ).toMatchObject({ permanent: true });
    expect(read("http", json(400, { error: { message: "(#130429) Rate limit hit", code: 130429 } }))).toMatchObject({
      permanent: false,
    });
    expect(read("http", json(400, { error: { message: "temporary", code: 2, is_transient: true } }))).toMatchObject({
      permanent: false,
    });
  });
  test("a 2xx is delivered whatever the body says (no ok field is read)", () => {
    expect(read("http", json(200, { ok: false, error: "not_in_channel" }))).toEqual({ ok: true });
    expect(read("http", { status: 204 })).toEqual({ ok: true });
  });
  test("408, 425, 429 and 5xx are transient; other 4xx permanent; a non-JSON body gives the status alone", () => {
    for (const status of [408, 425, 429, 500, 502, 503])
      expect(read("http", { status, body: "<html>oops</html>" })).toMatchObject({
        permanent: false,
        error: `HTTP ${status}`,
      });
    for (const status of [400, 401, 403, 404, 410, 413, 422])
      expect(read("http", { status, body: "" })).toMatchObject({ permanent: true });
  });
});

test("no answer (connection refused, timeout, a refused grant) is transient", () => {
  expect(read("http", { status: 0, error: "request timed out after 5000 ms" })).toEqual({
    ok: false,
    error: "request timed out after 5000 ms",
    permanent: false,
  });
  expect(read("json_ok", { status: 0 })).toMatchObject({ permanent: false });
});

test("the platform's words are cut and cleaned of control characters before the operator sees them", () => {
  const r = read("json_ok", json(200, { ok: false, error: "\u001b[31mred\u001b[0m\n" + "x".repeat(500) }));
  expect(r.ok).toBe(false);
  const error = (r as { error: string }).error;
  expect(error).not.toMatch(/[\u0000-\u001f]/);
  expect(error.length).toBeLessThan(260);
});

test("Retry-After: seconds, an HTTP date, or nothing usable", () => {
  expect(parseRetryAfter("120", NOW)).toBe(120_000);
  expect(parseRetryAfter(" 1.5 ", NOW)).toBe(1500);
  expect(parseRetryAfter("Sun, 01 Jun 2025 12:00:30 GMT", NOW)).toBe(30_000);
  expect(parseRetryAfter("Sun, 01 Jun 2025 11:00:00 GMT", NOW)).toBe(0);
  expect(parseRetryAfter("soon", NOW)).toBeNull();
  expect(parseRetryAfter(undefined, NOW)).toBeNull();
  // A date hint on a 503 makes it transient with that delay; a huge one is capped at a day.
  expect(read("http", { status: 503, headers: { "retry-after": "Sun, 01 Jun 2025 12:01:00 GMT" } })).toMatchObject({
    permanent: false,
    retry_after_ms: 60_000,
  });
  expect(read("http", { status: 503, headers: { "retry-after": "99999999" } })).toMatchObject({
    retry_after_ms: 24 * 3_600_000,
  });
});
