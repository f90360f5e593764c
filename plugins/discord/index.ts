// discord: Discord HTTP interactions (wire-formats B2). The host has already checked the Ed25519
// signature. PING is answered with PONG; an application command is acknowledged at once with a
// deferred response (Discord allows 3 s) and answered later by editing that response through the
// interaction webhook — the interaction token is the credential, kept in this plugin's state
// between parse_incoming and format_outgoing. It is kept until RING newer interactions replaced it
// (not deleted when the reply is formatted), so a send that failed can be formatted and sent again.
// A deferred interaction shows "thinking…" until it is edited, so the plugin declares `must_answer`:
// the host then answers a refused command too (a pairing code, a short refusal), never leaving it.
// Buttons (approvals, issue 16): a notice (an approval request to the channel's owner, the decision
// after a press) answers no interaction, so it goes out with the optional bot token: open the DM
// with the person (POST /users/@me/channels), then post in it (POST /channels/{{previous:id}}/messages,
// the host fills in the DM's id), its `buttons` as an action row. A press is a MESSAGE_COMPONENT
// interaction (type 3), signed like any other: read as a message with an `action` (the button's
// custom_id) and `sender` the presser. The owner's press is answered with UPDATE_MESSAGE (the
// buttons removed, the choice shown); anyone else's with an ephemeral "not yours" — the host
// decides either way, and a stranger's press decides nothing.
import { Config } from "@extism/as-pdk";
import { apiBase, buttonPress, describeChannel, inboundMessage, messagesWithReply, noRecipient, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { fail, JsonKind, JsonObject, JsonValue, kvGet, kvSet, outboundRequest, sendRequests } from "../sdk";
export { abort } from "../sdk";

const PONG = '{"type":1}';
const DEFERRED = '{"type":5}';
/** A component press that changes nothing on the message (DEFERRED_UPDATE_MESSAGE). */
const NOTHING = '{"type":6}';
const NOT_YOURS = '{"type":4,"data":{"content":"This approval is not yours to answer: only this bot\'s owner can decide it. Your press changed nothing.","flags":64}}';
/** Discord's limits: 5 buttons in an action row, 80 characters in a label, 100 in a custom_id. */
const ROW = 5;

const LIMIT = 2000;
/** How many interactions stay answerable; the oldest is forgotten when a new one arrives. */
const RING = 256;

/**
 * The state key of interaction `id`. Discord's ids are snowflakes; an id of odd length (longer than
 * 64 characters) is keyed by its FNV-1a hash and length instead, so no key grows with the payload.
 */
function keyOf(id: string): string {
  if (id.length <= 64) return "ix:" + id;
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < id.length; i++) h = (h ^ <u64>id.charCodeAt(i)) * 0x100000001b3;
  return "ix:#" + h.toString(16) + ":" + id.length.toString();
}

/** Remembers how to answer interaction `id`, forgetting the one RING interactions older. */
function remember(id: string, value: string): void {
  const next = kvGet("ring:next");
  const slot = next === null ? 0 : (<i32>parseInt(next)) % RING;
  const old = kvGet("ring:" + slot.toString());
  // (State written before keys were kept in the ring holds the bare id.)
  if (old !== null) kvSet(old.startsWith("ix:") ? old : "ix:" + old, null);
  const key = keyOf(id);
  kvSet("ring:" + slot.toString(), key);
  kvSet("ring:next", ((slot + 1) % RING).toString());
  kvSet(key, value);
}

export function describe(): i32 {
  return describeChannel("discord", "Discord interactions (slash commands, button presses) in; edited deferred responses, and with a bot token DMs, out.", "discord-ed25519", "http", ["discord.com"], ["bot_token"], true, true);
}

/** The command's text: its name and its options' values ("/ask question: …" → "ask …"). */
function commandText(data: JsonValue): string {
  let text = data.getString("name");
  const options = data.get("options");
  if (options !== null && options.kind == JsonKind.Array) {
    for (let i = 0; i < options.items.length; i++) {
      const v = options.items[i].get("value");
      if (v === null) continue;
      text += " " + (v.kind == JsonKind.String ? v.str : v.toString());
    }
  }
  return text;
}

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const ix = req.object();
  if (ix === null) return unreadable("an interaction");
  const type = <i32>ix.getNumber("type");
  if (type == 1) return messagesWithReply([], 200, "application/json", PONG);
  if (type == 3) return parseButtonPress(ix, req.owner());
  const data = ix.get("data");
  const id = ix.getString("id");
  const token = ix.getString("token");
  // Only an application command is answered; anything else (or one that cannot be answered: no id,
  // no token) is acknowledged and left alone.
  if (type != 2 || data === null || data.kind != JsonKind.Object || id.length == 0 || token.length == 0) return messagesWithReply([], 200, "application/json", DEFERRED);
  // Remember how to answer this interaction (valid for 15 minutes).
  const app = ix.getString("application_id");
  remember(id, (app.length > 0 ? app : Config.get("application_id") || "") + "/" + token);
  const sender = userOf(ix);
  // The conversation: its channel (the `channel` partial when channel_id is missing), else the user.
  let peer = ix.getString("channel_id");
  const partial = ix.get("channel");
  if (peer.length == 0 && partial !== null) peer = partial.getString("id");
  if (peer.length == 0) peer = sender;
  const m = inboundMessage(id, app.length > 0 ? app : "discord", peer, commandText(data));
  // A command is always addressed to the app. A guild channel or a group DM (context 2) is many people.
  const guild = ix.getString("guild_id");
  if (guild.length > 0) m.str("guild", guild).bool("group", true).bool("mentioned", true);
  else if (<i32>ix.getNumber("context", 1) == 2) m.bool("group", true).bool("mentioned", true);
  if (sender.length > 0) m.str("sender", sender);
  return messagesWithReply([m.toString()], 200, "application/json", DEFERRED);
}

/** Who acted: `user` in a DM, `member.user` in a guild; "" when neither is there. */
function userOf(ix: JsonValue): string {
  const member = ix.get("member");
  let user = ix.get("user");
  if ((user === null || user.kind != JsonKind.Object) && member !== null && member.kind == JsonKind.Object) user = member.get("user");
  return user !== null && user.kind == JsonKind.Object ? user.getString("id") : "";
}

/**
 * A button press (MESSAGE_COMPONENT): reported to the host with the button's custom_id and the
 * presser, whose DM (their user id as the peer) gets the decision. The webhook's own answer:
 * the owner's press updates the message (no buttons left to press again, the choice appended);
 * anyone else is told, only they see it, that the press changed nothing.
 */
function parseButtonPress(ix: JsonValue, owner: string): i32 {
  const data = ix.get("data");
  const presser = userOf(ix);
  const custom = data !== null && data.kind == JsonKind.Object ? data.getString("custom_id") : "";
  if (presser.length == 0 || custom.length == 0 || ix.getString("id").length == 0) return messagesWithReply([], 200, "application/json", NOTHING);
  const app = ix.getString("application_id");
  const m = buttonPress(ix.getString("id"), app.length > 0 ? app : "discord", presser, presser, custom);
  if (owner.length == 0 || presser != owner) return messagesWithReply([m.toString()], 200, "application/json", NOT_YOURS);
  let choice = "";
  if (custom.startsWith("approval:allow:")) choice = "Allow";
  else if (custom.startsWith("approval:deny:")) choice = "Deny";
  if (choice.length == 0) return messagesWithReply([m.toString()], 200, "application/json", NOTHING);
  const note = "\n\n**You pressed " + choice + ".** The decision follows in a message.";
  let content = "";
  const message = ix.get("message");
  if (message !== null && message.kind == JsonKind.Object) content = message.getString("content");
  if (content.length + note.length > LIMIT) content = content.substring(0, LIMIT - note.length - 1) + "…";
  const update = new JsonObject().num("type", 7).raw("data", new JsonObject().str("content", content + note).raw("components", "[]").toString());
  return messagesWithReply([m.toString()], 200, "application/json", update.toString());
}

export function format_outgoing(): i32 {
  const req = readOutgoing();
  if (req === null) return noRecipient();
  let text = req.text;
  if (text.length > LIMIT) text = text.substring(0, LIMIT - 1) + "…";
  if (req.notice) return directMessage(req.peer(), text, req.hasButtons() ? req.buttons : null);
  const saved = kvGet(keyOf(req.inReplyTo));
  if (saved === null) return fail("no pending interaction for this reply");
  const url = apiBase("https://discord.com") + "/api/v10/webhooks/" + saved + "/messages/@original";
  return sendRequests([outboundRequest("PATCH", url, '{"content-type":"application/json"}', new JsonObject().str("content", text).toString())]);
}

/**
 * A message to person `user` in their DM, with the bot token (a notice answers no interaction):
 * open (or find: Discord returns the same one) the DM channel, then post in it — the host fills in
 * the DM's id from the first answer. Without a bot token configured the host refuses to send
 * (`bot_token` is not granted), and the request stays answerable on every other surface.
 */
function directMessage(user: string, text: string, buttons: JsonValue | null): i32 {
  const base = apiBase("https://discord.com") + "/api/v10";
  const headers = '{"content-type":"application/json","authorization":"Bot {{secret:bot_token}}"}';
  const open = outboundRequest("POST", base + "/users/@me/channels", headers, new JsonObject().str("recipient_id", user).toString());
  // Nobody is pinged by what the message quotes (a tool's input may name @everyone).
  const body = new JsonObject().str("content", text).raw("allowed_mentions", '{"parse":[]}');
  if (buttons !== null) body.raw("components", actionRows(buttons));
  return sendRequests([open, outboundRequest("POST", base + "/channels/{{previous:id}}/messages", headers, body.toString())]);
}

/** `buttons: [{text, data}]` as action rows of buttons (Allow green, Deny red, others grey). */
function actionRows(buttons: JsonValue): string {
  const rows = new Array<string>();
  let row = new Array<string>();
  for (let i = 0; i < buttons.items.length; i++) {
    const b = buttons.items[i];
    const data = b.getString("data");
    const style = data.startsWith("approval:allow:") ? 3 : data.startsWith("approval:deny:") ? 4 : 2;
    let label = b.getString("text");
    if (label.length > 80) label = label.substring(0, 79) + "…";
    row.push(new JsonObject().num("type", 2).num("style", <f64>style).str("label", label).str("custom_id", data.substring(0, 100)).toString());
    if (row.length == ROW || i == buttons.items.length - 1) {
      rows.push('{"type":1,"components":[' + row.join(",") + "]}");
      row = new Array<string>();
    }
  }
  return "[" + rows.join(",") + "]";
}
