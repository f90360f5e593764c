// discord: Discord HTTP interactions (wire-formats B2). The host has already checked the Ed25519
// signature. PING is answered with PONG; an application command is acknowledged at once with a
// deferred response (Discord allows 3 s) and answered later by editing that response through the
// interaction webhook — the interaction token is the credential, kept in this plugin's state
// between parse_incoming and format_outgoing. It is kept until RING newer interactions replaced it
// (not deleted when the reply is formatted), so a send that failed can be formatted and sent again.
// A deferred interaction shows "thinking…" until it is edited, so the plugin declares `must_answer`:
// the host then answers a refused command too (a pairing code, a short refusal), never leaving it.
import { Config } from "@extism/as-pdk";
import { apiBase, describeChannel, inboundMessage, messagesWithReply, noRecipient, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { fail, JsonKind, JsonObject, JsonValue, kvGet, kvSet, outboundRequest, sendRequests } from "../sdk";
export { abort } from "../sdk";

const PONG = '{"type":1}';
const DEFERRED = '{"type":5}';

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
  return describeChannel("discord", "Discord interactions (slash commands) in, edited deferred responses out.", "discord-ed25519", "http", ["discord.com"], [], true);
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
  const data = ix.get("data");
  const id = ix.getString("id");
  const token = ix.getString("token");
  // Only an application command is answered; anything else (or one that cannot be answered: no id,
  // no token) is acknowledged and left alone.
  if (type != 2 || data === null || data.kind != JsonKind.Object || id.length == 0 || token.length == 0) return messagesWithReply([], 200, "application/json", DEFERRED);
  // Remember how to answer this interaction (valid for 15 minutes).
  const app = ix.getString("application_id");
  remember(id, (app.length > 0 ? app : Config.get("application_id") || "") + "/" + token);
  const member = ix.get("member");
  let user = ix.get("user");
  if ((user === null || user.kind != JsonKind.Object) && member !== null) user = member.get("user");
  const sender = user !== null && user.kind == JsonKind.Object ? user.getString("id") : "";
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

export function format_outgoing(): i32 {
  const req = readOutgoing();
  if (req === null) return noRecipient();
  const saved = kvGet(keyOf(req.inReplyTo));
  if (saved === null) return fail("no pending interaction for this reply");
  let text = req.text;
  if (text.length > LIMIT) text = text.substring(0, LIMIT - 1) + "…";
  const url = apiBase("https://discord.com") + "/api/v10/webhooks/" + saved + "/messages/@original";
  return sendRequests([outboundRequest("PATCH", url, '{"content-type":"application/json"}', new JsonObject().str("content", text).toString())]);
}
