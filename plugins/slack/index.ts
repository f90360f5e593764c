// slack: the Slack Events API channel (wire-formats B4). The host has already checked the v0
// signature and its 5-minute window. url_verification is answered with the challenge;
// event_callback messages become messages (the bot's own messages and edits are dropped, or it would
// answer itself); replies go out with chat.postMessage, the bot token filled in by the host.
// Buttons (approvals, issue 16): an outgoing message's `buttons` become Block Kit buttons; a press
// comes back as an interactivity request (form-encoded `payload`, signed like an event) of type
// block_actions, read as a message with an `action` whose `data` is the button's value.
import { apiBase, buttonPress, describeChannel, inboundMessage, messages, messagesWithReply, noMessages, noRecipient, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { JsonKind, JsonObject, JsonParser, JsonValue, outboundRequest, sendRequests } from "../sdk";
export { abort } from "../sdk";

export function describe(): i32 {
  return describeChannel("slack", "Slack Events API in, chat.postMessage out.", "slack-v0", "json_ok", ["slack.com"], ["bot_token"], false, true);
}

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const raw = req.raw();
  if (raw.startsWith("payload=")) return parseInteraction(formValue(raw, "payload"));
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

/** A button press (block_actions): who pressed it, where, and the button's value. Other interactions are ignored. */
function parseInteraction(json: string): i32 {
  const p = new JsonParser(json).parse();
  if (p === null || p.kind != JsonKind.Object) return unreadable("a Slack interaction");
  const actions = p.get("actions");
  const user = p.get("user");
  const channel = p.get("channel");
  if (p.getString("type") != "block_actions" || actions === null || actions.kind != JsonKind.Array || actions.items.length == 0 || user === null || user.kind != JsonKind.Object) return noMessages();
  const team = p.get("team");
  const app = p.getString("api_app_id");
  const peer = channel !== null && channel.kind == JsonKind.Object ? channel.getString("id") : user.getString("id");
  const m = buttonPress("action:" + p.getString("trigger_id", actions.items[0].getString("action_ts")), app.length > 0 ? app : "slack", peer, user.getString("id"), actions.items[0].getString("value"));
  if (team !== null && team.kind == JsonKind.Object) m.str("team", team.getString("id"));
  return messages([m.toString()]);
}

/** The value of `key` in an application/x-www-form-urlencoded body, decoded ("" when absent). */
function formValue(body: string, key: string): string {
  const fields = body.split("&");
  for (let i = 0; i < fields.length; i++) {
    if (fields[i].startsWith(key + "=")) return urlDecode(fields[i].substring(key.length + 1));
  }
  return "";
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Percent-decoding ("+" is a space) into UTF-8 text. */
function urlDecode(s: string): string {
  const bytes = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2b) {
      bytes[n++] = 0x20;
      continue;
    }
    if (c == 0x25 && i + 2 < s.length) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = <u8>((hi << 4) | lo);
        i += 2;
        continue;
      }
    }
    bytes[n++] = <u8>(c & 0xff);
  }
  return String.UTF8.decode(bytes.buffer.slice(0, n));
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
  if (req.hasButtons()) body.raw("blocks", blocks(req.text, req.buttons!));
  const url = apiBase("https://slack.com") + "/api/chat.postMessage";
  const headers = '{"content-type":"application/json; charset=utf-8","authorization":"Bearer {{secret:bot_token}}"}';
  return sendRequests([outboundRequest("POST", url, headers, body.toString())]);
}

/** The text as a section and `buttons: [{text, data}]` as an actions block (Block Kit). */
function blocks(text: string, buttons: JsonValue): string {
  const elements = new Array<string>();
  for (let i = 0; i < buttons.items.length; i++) {
    const b = buttons.items[i];
    const label = new JsonObject().str("type", "plain_text").str("text", b.getString("text")).toString();
    elements.push(new JsonObject().str("type", "button").str("action_id", "button_" + i.toString()).raw("text", label).str("value", b.getString("data")).toString());
  }
  const section = new JsonObject().str("type", "section").raw("text", new JsonObject().str("type", "mrkdwn").str("text", text).toString()).toString();
  return "[" + section + ',{"type":"actions","elements":[' + elements.join(",") + "]}]";
}
