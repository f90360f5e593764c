// slack: the Slack Events API channel (wire-formats B4). The host has already checked the v0
// signature and its 5-minute window. url_verification is answered with the challenge;
// event_callback messages become messages (the bot's own messages and edits are dropped, or it would
// answer itself); replies go out with chat.postMessage, the bot token filled in by the host.
import { Config } from "@extism/as-pdk";
import { fail, input, JsonKind, JsonObject, JsonParser, JsonValue, outboundRequest, output, quote, sendRequests } from "../sdk";
export { abort } from "../sdk";

export function describe(): i32 {
  output(
    '{"abi":1,"name":"slack","version":"1.0.0","kind":"channel","description":"Slack Events API in, chat.postMessage out.",' +
      '"channel":{"id":"slack","verify":"slack-v0","send_result":"json_ok"},"wants":{"hosts":["slack.com"],"paths":[],"secrets":["bot_token"]}}',
  );
  return 0;
}

export function parse_incoming(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("input must be {headers, body, query}");
  const body = new JsonParser(req.getString("body")).parse();
  if (body === null || body.kind != JsonKind.Object) return fail("the body is not a Slack event");
  const type = body.getString("type");
  if (type == "url_verification") {
    const reply = new JsonObject().str("challenge", body.getString("challenge")).toString();
    output('{"messages":[],"reply":{"status":200,"headers":{"content-type":"application/json"},"body":' + quote(reply) + "}}");
    return 0;
  }
  const event = body.get("event");
  if (type != "event_callback" || event === null || event.kind != JsonKind.Object) {
    output('{"messages":[]}');
    return 0;
  }
  const etype = event.getString("type");
  const subtype = event.getString("subtype");
  if ((etype != "message" && etype != "app_mention") || subtype.length > 0 || event.getString("bot_id").length > 0) {
    output('{"messages":[]}');
    return 0;
  }
  const m = new JsonObject()
    .str("id", body.getString("event_id"))
    .str("account", body.getString("api_app_id", "slack"))
    .str("team", body.getString("team_id"))
    .str("peer", event.getString("channel"))
    .str("sender", event.getString("user"))
    .str("text", event.getString("text"));
  // Only a direct message ("im") is one person; channels and group DMs are many (an app_mention has
  // no channel_type: it is always in a channel). Addressed to the bot: an app_mention, or a reply in
  // a thread the bot started.
  if (event.getString("channel_type") != "im") {
    m.bool("group", true);
    if (etype == "app_mention" || isBotUser(body, event.getString("parent_user_id"))) m.bool("mentioned", true);
  }
  const thread = event.getString("thread_ts");
  if (thread.length > 0) m.str("thread", thread);
  output('{"messages":[' + m.toString() + "]}");
  return 0;
}

/** Whether `user` is the bot user the event was delivered for (an `authorizations[]` entry with is_bot). */
function isBotUser(body: JsonValue, user: string): bool {
  if (user.length == 0) return false;
  const auths = body.get("authorizations");
  if (auths === null || auths.kind != JsonKind.Array) return false;
  for (let i = 0; i < auths.items.length; i++) {
    const a = auths.items[i];
    const isBot = a.get("is_bot");
    if (isBot !== null && isBot.kind == JsonKind.Bool && isBot.bool && a.getString("user_id") == user) return true;
  }
  return false;
}

export function format_outgoing(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("bad input");
  const to = req.get("to");
  if (to === null) return fail("no recipient");
  const base = Config.get("api_base");
  const body = new JsonObject().str("channel", to.getString("peer")).str("text", req.getString("text"));
  const thread = to.getString("thread");
  if (thread.length > 0) body.str("thread_ts", thread);
  const url = (base === null ? "https://slack.com" : base) + "/api/chat.postMessage";
  const headers = '{"content-type":"application/json; charset=utf-8","authorization":"Bearer {{secret:bot_token}}"}';
  return sendRequests([outboundRequest("POST", url, headers, body.toString())]);
}
