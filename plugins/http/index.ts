// http: the plain JSON channel, for curl and scripts. POST /webhook/<channel> with
// {"peer":"alice","text":"hi"} (optional "account", "thread", "id"); the gateway answers in the
// response body. Outbound requests are none: the reply is the HTTP response itself.
import { fail, input, JsonKind, JsonObject, JsonParser, now, output } from "../sdk";
export { abort } from "../sdk";

export function describe(): i32 {
  output(
    '{"abi":1,"name":"http","version":"1.0.0","kind":"channel","description":"Plain JSON over HTTP: {peer, text} in, the reply in the response.",' +
      '"channel":{"id":"http","verify":"none"},"wants":{"hosts":[],"paths":[],"secrets":[]}}',
  );
  return 0;
}

let counter: i64 = 0;

export function parse_incoming(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null || req.kind != JsonKind.Object) return fail("input must be {headers, body, query}");
  const body = new JsonParser(req.getString("body")).parse();
  if (body === null || body.kind != JsonKind.Object) {
    output('{"messages":[],"reply":{"status":400,"headers":{"content-type":"application/json"},"body":"{\\"error\\":\\"body must be a JSON object {peer, text}\\"}"}}');
    return 0;
  }
  const peer = body.getString("peer");
  const text = body.getString("text");
  if (peer.length == 0 || text.length == 0) {
    output('{"messages":[],"reply":{"status":400,"headers":{"content-type":"application/json"},"body":"{\\"error\\":\\"peer and text are required strings\\"}"}}');
    return 0;
  }
  let id = body.getString("id");
  if (id.length == 0) {
    counter++;
    id = "http-" + (<i64>now()).toString() + "-" + counter.toString();
  }
  const account = body.getString("account", "default");
  const msg = new JsonObject().str("id", id).str("account", account).str("peer", peer).str("text", text);
  const thread = body.getString("thread");
  if (thread.length > 0) msg.str("thread", thread);
  output("{\"messages\":[" + msg.toString() + "]}");
  return 0;
}

export function format_outgoing(): i32 {
  // The reply travels in the webhook's own response; nothing to send.
  output('{"requests":[]}');
  return 0;
}
