// exoclaw guest SDK (ABI v1) over @extism/as-pdk.
//
// - UTF-8-safe input and output (as-pdk's Host.outputString sizes its buffer in UTF-16 units and
//   breaks on non-ASCII text).
// - The exoclaw host functions: exo_log, exo_now, exo_kv_get / exo_kv_set, exo_http.
// - An abort handler that reports the message through the host before trapping (a message given
//   to error_set is lost when the call traps). Build with `--use abort=<entry>/abort` and
//   `export { abort } from "../sdk"` in the plugin, as scripts/build-plugins.ts does.
import { Host, Memory } from "@extism/as-pdk";
import { JsonObject, JsonParser, JsonValue, quote } from "./json";

export { JsonKind, JsonObject, JsonParser, JsonValue, quote } from "./json";

@external("extism:host/env", "error_set")
declare function error_set(offset: u64): void;
@external("extism:host/env", "length")
declare function extism_length(offset: u64): u64;

@external("extism:host/user", "exo_log")
declare function exo_log(level: i32, msg: u64): void;
@external("extism:host/user", "exo_now")
declare function exo_now(): f64;
@external("extism:host/user", "exo_kv_get")
declare function exo_kv_get(key: u64): u64;
@external("extism:host/user", "exo_kv_set")
declare function exo_kv_set(key: u64, value: u64): void;
@external("extism:host/user", "exo_http")
declare function exo_http(request: u64): u64;
@external("extism:host/user", "exo_fs_read")
declare function exo_fs_read(path: u64): u64;
@external("extism:host/user", "exo_fs_write")
declare function exo_fs_write(path: u64, content: u64): u64;

export const LOG_DEBUG: i32 = 0;
export const LOG_INFO: i32 = 1;
export const LOG_WARN: i32 = 2;
export const LOG_ERROR: i32 = 3;

function readString(offset: u64): string {
  if (offset == 0) return "";
  return new Memory(offset, extism_length(offset)).toString();
}

/** The call's input as text. */
export function input(): string {
  return String.UTF8.decode(Host.input().buffer);
}

/** The call's input parsed as JSON (a JSON null when it is not valid JSON). */
export function inputJson(): JsonValue {
  const v = new JsonParser(input()).parse();
  return v === null ? JsonValue.null() : v;
}

/** Sets the call's output, UTF-8 encoded. */
export function output(text: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(text)));
}

/** Fails the call with `message`; return the result from the export: `return fail("…")`. */
export function fail(message: string): i32 {
  error_set(Memory.allocateString(message).offset);
  return 1;
}

/** Sets a tool result: `{content, is_error}`. Returns 0 for the export to return. */
export function toolResult(content: string, isError: bool = false): i32 {
  output(new JsonObject().str("content", content).bool("is_error", isError).toString());
  return 0;
}

export function log(level: i32, message: string): void {
  exo_log(level, Memory.allocateString(message).offset);
}

/** Milliseconds since the epoch, from the host's clock. */
export function now(): f64 {
  return exo_now();
}

/** This plugin's persistent state; null when the key is not set. */
export function kvGet(key: string): string | null {
  const off = exo_kv_get(Memory.allocateString(key).offset);
  if (off == 0) return null;
  return readString(off);
}

/** Sets (or with null, deletes) a key of this plugin's persistent state. */
export function kvSet(key: string, value: string | null): void {
  const v: u64 = value === null ? 0 : Memory.allocateString(value).offset;
  exo_kv_set(Memory.allocateString(key).offset, v);
}

export class HttpResponse {
  status: i32 = 0;
  body: string = "";
  /** Set when the host refused or could not make the request (status is then 0). */
  error: string = "";
}

/**
 * An HTTP request through the host's proxy. The host allows only the operator's granted hosts and
 * replaces `{{secret:NAME}}` in the URL and header values for granted names; the value never
 * enters this plugin's memory.
 */
export function http(method: string, url: string, headers: JsonObject | null = null, body: string = ""): HttpResponse {
  const req = new JsonObject()
    .str("method", method)
    .str("url", url)
    .raw("headers", headers === null ? "{}" : headers.toString())
    .str("body", body)
    .toString();
  const raw = readString(exo_http(Memory.allocateString(req).offset));
  const res = new HttpResponse();
  const v = new JsonParser(raw).parse();
  if (v === null) {
    res.error = "bad response from host";
    return res;
  }
  res.status = <i32>v.getNumber("status");
  res.body = v.getString("body");
  res.error = v.getString("error");
  return res;
}

export class FsResult {
  content: string = "";
  /** Set when the host refused (path not granted) or could not read. */
  error: string = "";
}

function fsAnswer(raw: string): FsResult {
  const r = new FsResult();
  const v = new JsonParser(raw).parse();
  if (v === null) {
    r.error = "bad response from host";
    return r;
  }
  r.content = v.getString("content");
  r.error = v.getString("error");
  return r;
}

/** Reads a file under one of the operator's granted paths (guest-side path, e.g. /data/notes.txt). */
export function fsRead(path: string): FsResult {
  return fsAnswer(readString(exo_fs_read(Memory.allocateString(path).offset)));
}

/** Writes a file under a granted path; returns "" or the error. */
export function fsWrite(path: string, content: string): string {
  return fsAnswer(readString(exo_fs_write(Memory.allocateString(path).offset, Memory.allocateString(content).offset))).error;
}

/** One outbound request of a channel's format_outgoing (the host sends it through the allowlist). */
export function outboundRequest(method: string, url: string, headersJson: string, body: string): JsonObject {
  return new JsonObject().str("method", method).str("url", url).raw("headers", headersJson).str("body", body);
}

/** Sets format_outgoing's output `{requests: [...]}`; returns 0 for the export to return. */
export function sendRequests(requests: Array<JsonObject>): i32 {
  const parts = new Array<string>();
  for (let i = 0; i < requests.length; i++) parts.push(requests[i].toString());
  output('{"requests":[' + parts.join(",") + "]}");
  return 0;
}

/** The abort handler (see the header); reports through the host, then traps. */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const where = (fileName === null ? "?" : fileName) + ":" + line.toString() + ":" + column.toString();
  log(LOG_ERROR, "abort: " + (message === null ? "" : message) + " at " + where);
  unreachable();
}

/** JSON-quotes a string (re-exported helper for building outputs by hand). */
export function jsonString(s: string): string {
  return quote(s);
}
