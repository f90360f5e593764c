// http: the plain JSON channel, for curl and scripts. POST /webhook/<channel> with
// {"peer":"alice","text":"hi"} (optional "account", "thread", "id"); the gateway answers in the
// response body. Outbound requests are none: the reply is the HTTP response itself.
import { describeChannel, inboundMessage, messages, messagesWithReply, readIncoming, unreadable } from "../sdk/channel";
import { now, sendRequests } from "../sdk";
export { abort } from "../sdk";

export function describe(): i32 {
  return describeChannel("http", "Plain JSON over HTTP: {peer, text} in, the reply in the response.", "none", "", [], []);
}

let counter: i64 = 0;

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const body = req.object();
  if (body === null) return messagesWithReply([], 400, "application/json", '{"error":"body must be a JSON object {peer, text}"}');
  const peer = body.getString("peer");
  const text = body.getString("text");
  if (peer.length == 0 || text.length == 0) return messagesWithReply([], 400, "application/json", '{"error":"peer and text are required strings"}');
  let id = body.getString("id");
  if (id.length == 0) {
    counter++;
    id = "http-" + (<i64>now()).toString() + "-" + counter.toString();
  }
  const account = body.getString("account");
  const msg = inboundMessage(id, account.length > 0 ? account : "default", peer, text);
  const thread = body.getString("thread");
  if (thread.length > 0) msg.str("thread", thread);
  return messages([msg.toString()]);
}

export function format_outgoing(): i32 {
  // The reply travels in the webhook's own response; nothing to send.
  return sendRequests([]);
}
