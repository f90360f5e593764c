// http-get: fetches a URL from the operator's granted hosts and returns the status and body.
// Secrets: a URL or header may carry {{secret:NAME}}; the host fills it in for granted names only.
import { fail, http, inputJson, JsonKind, JsonObject, output, toolResult } from "../sdk";
export { abort } from "../sdk";

const MAX_BODY = 64 * 1024;

const DESCRIBE = `{
  "abi": 1, "name": "http-get", "version": "1.0.0", "kind": "tool",
  "description": "Fetches a web page or API response over HTTP GET (only from hosts the operator granted).",
  "tools": [{
    "name": "http_get",
    "description": "GET a URL; returns the HTTP status and up to 64 KiB of the body.",
    "input_schema": {
      "type": "object",
      "properties": {
        "url": {"type": "string", "description": "http:// or https:// URL"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}}
      },
      "required": ["url"]
    },
    "effects": ["egress"]
  }],
  "wants": {"hosts": [], "paths": [], "secrets": []}
}`;

export function describe(): i32 {
  output(DESCRIBE);
  return 0;
}

export function call(): i32 {
  const req = inputJson();
  if (req.kind != JsonKind.Object || req.getString("tool") != "http_get") return fail("unknown tool: " + req.getString("tool"));
  const input = req.get("input");
  if (input === null || input.kind != JsonKind.Object) return toolResult("input must be an object with a url", true);
  const url = input.getString("url");
  if (url.length == 0) return toolResult("url is required", true);
  let headers: JsonObject | null = null;
  const h = input.get("headers");
  if (h !== null && h.kind == JsonKind.Object) {
    headers = new JsonObject();
    for (let i = 0; i < h.keys.length; i++) {
      if (h.items[i].kind == JsonKind.String) headers.str(h.keys[i], h.items[i].str);
    }
  }
  const res = http("GET", url, headers);
  if (res.error.length > 0) return toolResult("request failed: " + res.error, true);
  let body = res.body;
  let note = "";
  if (body.length > MAX_BODY) {
    body = body.substring(0, MAX_BODY);
    note = "\n[truncated]";
  }
  return toolResult("HTTP " + res.status.toString() + "\n" + body + note, res.status >= 400);
}
