// slack: the Slack Events API channel (wire-formats B4). The host has already checked the v0
// signature and its 5-minute window. url_verification is answered with the challenge;
// event_callback messages become messages (the bot's own messages and edits are dropped, or it would
// answer itself); replies go out with chat.postMessage, the bot token filled in by the host.
import { apiBase, describeChannel, inboundMessage, messages, messagesWithReply, noMessages, noRecipient, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { JsonKind, JsonObject, JsonValue, outboundRequest, sendRequests } from "../sdk";
export { abort } from "../sdk";

export function describe(): i32 {
  return describeChannel("slack", "Slack Events API in, chat.postMessage out.", "slack-v0", "json_ok", ["slack.com"], ["bot_token"]);
}

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const body = req.object();
  if (body === null) return unreadable("a Slack event");
  const type = body.getString("type");
  if (type == "url_verification") return messagesWithReply([], 200, "application/json", new JsonObject().str("challenge", body.getString("challenge")).toString());
  const event = body.get("event");
  if (type != "event_callback" || event === null || event.kind != JsonKind.Object) return noMessages();
  const etype = event.getString("type");
  const subtype = event.getString("subtype");
  if ((etype != "message" && etype != "app_mention") || subtype.length > 0 || event.getString("bot_id").length > 0) return noMessages();
  const app = body.getString("api_app_id");
  const m = inboundMessage(body.getString("event_id"), app.length > 0 ? app : "slack", event.getString("channel"), event.getString("text"))
    .str("team", body.getString("team_id"))
    .str("sender", event.getString("user"));
  // Only a direct message ("im") is one person; channels and group DMs are many (an app_mention has
  // no channel_type: it is always in a channel). Addressed to the bot: an app_mention, or a reply in
  // a thread the bot started.
  if (event.getString("channel_type") != "im") {
    m.bool("group", true);
    if (etype == "app_mention" || isBotUser(body, event.getString("parent_user_id"))) m.bool("mentioned", true);
  }
  const thread = event.getString("thread_ts");
  if (thread.length > 0) m.str("thread", thread);
  return messages([m.toString()]);
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
  const req = readOutgoing();
  if (req === null) return noRecipient();
  const body = new JsonObject().str("channel", req.peer()).str("text", req.text);
  const thread = req.thread();
  if (thread.length > 0) body.str("thread_ts", thread);
  const url = apiBase("https://slack.com") + "/api/chat.postMessage";
  const headers = '{"content-type":"application/json; charset=utf-8","authorization":"Bearer {{secret:bot_token}}"}';
  return sendRequests([outboundRequest("POST", url, headers, body.toString())]);
}
