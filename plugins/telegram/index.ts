// telegram: the Telegram Bot API channel (wire-formats B1). Inbound: an Update with a text message;
// the host has already checked X-Telegram-Bot-Api-Secret-Token. Outbound: sendMessage to
// https://api.telegram.org/bot{{secret:bot_token}}/… — the host fills the token in; this plugin
// never sees it. Texts over Telegram's 4096-character limit are sent as several messages.
// Buttons (approvals, issue 16): an outgoing message's `buttons` become an inline keyboard; a press
// comes back as a `callback_query` Update (verified like any other), read as a message with an
// `action` whose `data` is the button's, and `sender` the presser; the webhook is answered with
// answerCallbackQuery (a Bot API call in the webhook response) so the button stops spinning.
import { Config } from "@extism/as-pdk";
import { fail, input, JsonKind, JsonObject, JsonParser, JsonValue, outboundRequest, output, quote, sendRequests } from "../sdk";
export { abort } from "../sdk";

const LIMIT = 4096;

export function describe(): i32 {
  output(
    '{"abi":1,"name":"telegram","version":"1.0.0","kind":"channel","description":"Telegram Bot API: webhook Updates in, sendMessage out.",' +
      '"channel":{"id":"telegram","verify":"telegram-secret","send_result":"json_ok","buttons":true},"wants":{"hosts":["api.telegram.org"],"paths":[],"secrets":["bot_token"]}}',
  );
  return 0;
}

function intString(v: f64): string {
  return (<i64>v).toString();
}

export function parse_incoming(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("input must be {headers, body, query}");
  const update = new JsonParser(req.getString("body")).parse();
  if (update === null || update.kind != JsonKind.Object) return fail("the body is not a Telegram Update");
  const press = update.get("callback_query");
  if (press !== null && press.kind == JsonKind.Object) return parseButtonPress(update, press);
  let msg = update.get("message");
  if (msg === null) msg = update.get("edited_message");
  if (msg === null || msg.kind != JsonKind.Object || msg.get("text") === null) {
    // Other updates (joins, reactions, stickers…) are acknowledged and ignored.
    output('{"messages":[]}');
    return 0;
  }
  const chat = msg.get("chat");
  const from = msg.get("from");
  if (chat === null) return fail("message without chat");
  const m = new JsonObject()
    .str("id", intString(update.getNumber("update_id")))
    .str("account", "bot")
    .str("peer", intString(chat.getNumber("id")))
    .str("text", msg.getString("text"));
  // Memory belongs to the sender: in a group the chat is many people (a channel post has no sender).
  if (from !== null) m.str("sender", intString(from.getNumber("id")));
  if (chat.getString("type") != "private") {
    m.bool("group", true);
    if (addressedToBot(msg, msg.getString("text"))) m.bool("mentioned", true);
  }
  const thread = msg.get("message_thread_id");
  if (thread !== null && thread.kind == JsonKind.Number) m.str("thread", intString(thread.num));
  output('{"messages":[' + m.toString() + "]}");
  return 0;
}

/** A press of an inline-keyboard button: who pressed it, in which chat, and the button's data. */
function parseButtonPress(update: JsonValue, press: JsonValue): i32 {
  const from = press.get("from");
  if (from === null) return fail("callback_query without from");
  const sender = intString(from.getNumber("id"));
  let peer = sender;
  const message = press.get("message");
  if (message !== null) {
    const chat = message.get("chat");
    if (chat !== null) peer = intString(chat.getNumber("id"));
  }
  const m = new JsonObject()
    .str("id", intString(update.getNumber("update_id")))
    .str("account", "bot")
    .str("peer", peer)
    .str("sender", sender)
    .str("text", "")
    .raw("action", new JsonObject().str("data", press.getString("data")).toString());
  // The webhook's answer is a Bot API call (Telegram runs it): answerCallbackQuery stops the button's spinner.
  const answer = new JsonObject().str("method", "answerCallbackQuery").str("callback_query_id", press.getString("id")).toString();
  output('{"messages":[' + m.toString() + '],"reply":{"status":200,"headers":{"content-type":"application/json"},"body":' + quote(answer) + "}}");
  return 0;
}

/** This bot's username (config `bot_username`, with or without "@"), lower case, or "" when not configured. */
function ownName(): string {
  const name = Config.get("bot_username");
  if (name === null) return "";
  return (name.startsWith("@") ? name.substring(1) : name).toLowerCase();
}

/** A username is this bot's: exactly `bot_username` when configured, else any bot's (Telegram bot usernames end in "bot"). */
function isOwnName(name: string): bool {
  const own = ownName();
  const lower = name.toLowerCase();
  return own.length > 0 ? lower == own : lower.endsWith("bot");
}

function isOwnUser(user: JsonValue | null): bool {
  if (user === null) return false;
  const isBot = user.get("is_bot");
  if (isBot === null || isBot.kind != JsonKind.Bool || !isBot.bool) return false;
  return ownName().length == 0 || isOwnName(user.getString("username"));
}

/**
 * A group message is addressed to the bot when it replies to the bot's message, mentions it
 * (`@name`, or a text mention of the bot user), or is a command for it (`/ask`, `/ask@name`).
 * Entity offsets count UTF-16 code units, as AssemblyScript strings do.
 */
function addressedToBot(msg: JsonValue, text: string): bool {
  const reply = msg.get("reply_to_message");
  if (reply !== null && isOwnUser(reply.get("from"))) return true;
  const entities = msg.get("entities");
  if (entities === null || entities.kind != JsonKind.Array) return false;
  for (let i = 0; i < entities.items.length; i++) {
    const e = entities.items[i];
    const type = e.getString("type");
    const start = <i32>e.getNumber("offset");
    const piece = text.substring(start, start + <i32>e.getNumber("length"));
    if (type == "mention" && piece.startsWith("@") && isOwnName(piece.substring(1))) return true;
    if (type == "text_mention" && isOwnUser(e.get("user"))) return true;
    if (type == "bot_command") {
      const at = piece.indexOf("@");
      if (at < 0 || isOwnName(piece.substring(at + 1))) return true;
    }
  }
  return false;
}

export function format_outgoing(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("bad input");
  const to = req.get("to");
  if (to === null) return fail("no recipient");
  const peer = to.getString("peer");
  const thread = to.getString("thread");
  const base = Config.get("api_base");
  const url = (base === null ? "https://api.telegram.org" : base) + "/bot{{secret:bot_token}}/sendMessage";
  const text = req.getString("text");
  const parts = new Array<string>();
  for (let i = 0; i < text.length; i += LIMIT) parts.push(text.substring(i, i + LIMIT));
  if (parts.length == 0) parts.push("(no reply)");
  const requests = new Array<JsonObject>();
  for (let i = 0; i < parts.length; i++) {
    // chat_id as a number when it is one (negative for groups), as Telegram documents it.
    const body = new JsonObject().raw("chat_id", isInteger(peer) ? peer : quote(peer)).str("text", parts[i]);
    if (thread.length > 0 && isInteger(thread)) body.raw("message_thread_id", thread);
    if (i == parts.length - 1) {
      const keyboard = inlineKeyboard(req.get("buttons"));
      if (keyboard.length > 0) body.raw("reply_markup", keyboard);
    }
    requests.push(outboundRequest("POST", url, '{"content-type":"application/json"}', body.toString()));
  }
  return sendRequests(requests);
}

/** `buttons: [{text, data}]` as Telegram's reply_markup (one row), or "" for none. */
function inlineKeyboard(buttons: JsonValue | null): string {
  if (buttons === null || buttons.kind != JsonKind.Array || buttons.items.length == 0) return "";
  const row = new Array<string>();
  for (let i = 0; i < buttons.items.length; i++) {
    const b = buttons.items[i];
    row.push(new JsonObject().str("text", b.getString("text")).str("callback_data", b.getString("data")).toString());
  }
  return '{"inline_keyboard":[[' + row.join(",") + "]]}";
}

function isInteger(s: string): bool {
  if (s.length == 0 || s.length > 20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c >= 0x30 && c <= 0x39) && !(i == 0 && c == 0x2d)) return false;
  }
  return true;
}
