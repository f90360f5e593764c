// telegram: the Telegram Bot API channel (wire-formats B1). Inbound: an Update with a text message;
// the host has already checked X-Telegram-Bot-Api-Secret-Token. Outbound: sendMessage to
// https://api.telegram.org/bot{{secret:bot_token}}/… — the host fills the token in; this plugin
// never sees it. Texts over Telegram's 4096-character limit are sent as several messages.
// Buttons (approvals, issue 16): an outgoing message's `buttons` become an inline keyboard; a press
// comes back as a `callback_query` Update (verified like any other), read as a message with an
// `action` whose `data` is the button's, and `sender` the presser; the webhook is answered with
// answerCallbackQuery (a Bot API call in the webhook response) so the button stops spinning.
import { apiBase, buttonPress, describeChannel, inboundMessage, isInteger, messages, messagesWithReply, noMessages, noRecipient, pieces, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { JsonKind, JsonObject, JsonValue, outboundRequest, quote, sendRequests } from "../sdk";
export { abort } from "../sdk";

const LIMIT = 4096;

export function describe(): i32 {
  return describeChannel("telegram", "Telegram Bot API: webhook Updates in, sendMessage out.", "telegram-secret", "json_ok", ["api.telegram.org"], ["bot_token"], false, true);
}

function intString(v: f64): string {
  return (<i64>v).toString();
}

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const update = req.object();
  if (update === null) return unreadable("a Telegram Update");
  const press = update.get("callback_query");
  if (press !== null && press.kind == JsonKind.Object) return parseButtonPress(update, press);
  let msg = update.get("message");
  if (msg === null) msg = update.get("edited_message");
  // Other updates (joins, reactions, stickers…), and anything without a chat to answer in, are
  // acknowledged and ignored.
  if (msg === null || msg.kind != JsonKind.Object || msg.get("text") === null) return noMessages();
  const chat = msg.get("chat");
  if (chat === null || chat.kind != JsonKind.Object) return noMessages();
  const from = msg.get("from");
  const m = inboundMessage(idString(update.get("update_id")), "bot", idString(chat.get("id")), msg.getString("text"));
  // Memory belongs to the sender: in a group the chat is many people (a channel post has no sender).
  if (from !== null && from.kind == JsonKind.Object) m.str("sender", idString(from.get("id")));
  if (chat.getString("type") != "private") {
    m.bool("group", true);
    if (addressedToBot(msg, msg.getString("text"), req.botUsername())) m.bool("mentioned", true);
  }
  const thread = msg.get("message_thread_id");
  if (thread !== null && thread.kind == JsonKind.Number) m.str("thread", intString(thread.num));
  return messages([m.toString()]);
}

/** A press of an inline-keyboard button: who pressed it, in which chat, and the button's data. */
function parseButtonPress(update: JsonValue, press: JsonValue): i32 {
  const from = press.get("from");
  if (from === null || from.kind != JsonKind.Object) return unreadable("a callback_query with a sender");
  const sender = idString(from.get("id"));
  let peer = sender;
  const message = press.get("message");
  if (message !== null && message.kind == JsonKind.Object) {
    const chat = message.get("chat");
    if (chat !== null && chat.kind == JsonKind.Object) peer = idString(chat.get("id"));
  }
  const m = buttonPress(idString(update.get("update_id")), "bot", peer, sender, press.getString("data"));
  // The webhook's answer is a Bot API call (Telegram runs it): answerCallbackQuery stops the button's spinner.
  const answer = new JsonObject().str("method", "answerCallbackQuery").str("callback_query_id", press.getString("id")).toString();
  return messagesWithReply([m.toString()], 200, "application/json", answer);
}

/** A Bot API id (a number; a string is taken as it is), as text; "" when absent. */
function idString(v: JsonValue | null): string {
  if (v === null) return "";
  if (v.kind == JsonKind.Number) return intString(v.num);
  return v.kind == JsonKind.String ? v.str : "";
}

/** A username is this bot's: exactly `bot_username` when configured, else any bot's (Telegram bot usernames end in "bot"). */
function isOwnName(name: string, own: string): bool {
  const lower = name.toLowerCase();
  return own.length > 0 ? lower == own : lower.endsWith("bot");
}

function isOwnUser(user: JsonValue | null, own: string): bool {
  if (user === null) return false;
  const isBot = user.get("is_bot");
  if (isBot === null || isBot.kind != JsonKind.Bool || !isBot.bool) return false;
  return own.length == 0 || isOwnName(user.getString("username"), own);
}

/**
 * A group message is addressed to the bot when it replies to the bot's message, mentions it
 * (`@name`, or a text mention of the bot user), or is a command for it (`/ask`, `/ask@name`).
 * Entity offsets count UTF-16 code units, as AssemblyScript strings do.
 */
function addressedToBot(msg: JsonValue, text: string, own: string): bool {
  const reply = msg.get("reply_to_message");
  if (reply !== null && isOwnUser(reply.get("from"), own)) return true;
  const entities = msg.get("entities");
  if (entities === null || entities.kind != JsonKind.Array) return false;
  for (let i = 0; i < entities.items.length; i++) {
    const e = entities.items[i];
    const type = e.getString("type");
    const start = <i32>e.getNumber("offset");
    const piece = text.substring(start, start + <i32>e.getNumber("length"));
    if (type == "mention" && piece.startsWith("@") && isOwnName(piece.substring(1), own)) return true;
    if (type == "text_mention" && isOwnUser(e.get("user"), own)) return true;
    if (type == "bot_command") {
      const at = piece.indexOf("@");
      if (at < 0 || isOwnName(piece.substring(at + 1), own)) return true;
    }
  }
  return false;
}

export function format_outgoing(): i32 {
  const req = readOutgoing();
  if (req === null) return noRecipient();
  const peer = req.peer();
  const thread = req.thread();
  const url = apiBase("https://api.telegram.org") + "/bot{{secret:bot_token}}/sendMessage";
  // An empty text is not sent (Telegram refuses it: "message text is empty").
  if (req.text.length == 0) return sendRequests([]);
  const parts = pieces(req.text, LIMIT);
  const requests = new Array<JsonObject>();
  for (let i = 0; i < parts.length; i++) {
    // chat_id as a number when it is one (negative for groups), as Telegram documents it.
    const body = new JsonObject().raw("chat_id", isInteger(peer) ? peer : quote(peer)).str("text", parts[i]);
    if (thread.length > 0 && isInteger(thread)) body.raw("message_thread_id", thread);
    // The buttons go under the last piece.
    if (i == parts.length - 1 && req.hasButtons()) body.raw("reply_markup", inlineKeyboard(req.buttons!));
    requests.push(outboundRequest("POST", url, '{"content-type":"application/json"}', body.toString()));
  }
  return sendRequests(requests);
}

/** `buttons: [{text, data}]` as Telegram's reply_markup (one row). */
function inlineKeyboard(buttons: JsonValue): string {
  const row = new Array<string>();
  for (let i = 0; i < buttons.items.length; i++) {
    const b = buttons.items[i];
    row.push(new JsonObject().str("text", b.getString("text")).str("callback_data", b.getString("data")).toString());
  }
  return '{"inline_keyboard":[[' + row.join(",") + "]]}";
}
