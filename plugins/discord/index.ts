// discord: Discord HTTP interactions (wire-formats B2). The host has already checked the Ed25519
// signature. PING is answered with PONG; an application command is acknowledged at once with a
// deferred response (Discord allows 3 s) and answered later by editing that response through the
// interaction webhook — the interaction token is the credential, kept in this plugin's state
// between parse_incoming and format_outgoing. It is kept until RING newer interactions replaced it
// (not deleted when the reply is formatted), so a send that failed can be formatted and sent again.
import { Config } from "@extism/as-pdk";
import { fail, input, JsonKind, JsonObject, JsonParser, JsonValue, kvGet, kvSet, outboundRequest, output, sendRequests } from "../sdk";
export { abort } from "../sdk";

const LIMIT = 2000;
/** How many interactions stay answerable; the oldest is forgotten when a new one arrives. */
const RING = 256;

/** Remembers how to answer interaction `id`, forgetting the one RING interactions older. */
function remember(id: string, value: string): void {
  const next = kvGet("ring:next");
  const slot = next === null ? 0 : (<i32>parseInt(next)) % RING;
  const old = kvGet("ring:" + slot.toString());
  if (old !== null) kvSet("ix:" + old, null);
  kvSet("ring:" + slot.toString(), id);
  kvSet("ring:next", ((slot + 1) % RING).toString());
  kvSet("ix:" + id, value);
}

export function describe(): i32 {
  output(
    '{"abi":1,"name":"discord","version":"1.0.0","kind":"channel","description":"Discord interactions (slash commands) in, edited deferred responses out.",' +
      '"channel":{"id":"discord","verify":"discord-ed25519","send_result":"http"},"wants":{"hosts":["discord.com"],"paths":[],"secrets":[]}}',
  );
  return 0;
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
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("input must be {headers, body, query}");
  const ix = new JsonParser(req.getString("body")).parse();
  if (ix === null || ix.kind != JsonKind.Object) return fail("the body is not an interaction");
  const type = <i32>ix.getNumber("type");
  if (type == 1) {
    output('{"messages":[],"reply":{"status":200,"headers":{"content-type":"application/json"},"body":"{\\"type\\":1}"}}');
    return 0;
  }
  const data = ix.get("data");
  if (type != 2 || data === null) {
    output('{"messages":[],"reply":{"status":200,"headers":{"content-type":"application/json"},"body":"{\\"type\\":5}"}}');
    return 0;
  }
  const id = ix.getString("id");
  // Remember how to answer this interaction (valid for 15 minutes).
  remember(id, ix.getString("application_id", Config.get("application_id") || "") + "/" + ix.getString("token"));
  const member = ix.get("member");
  let user = ix.get("user");
  if (user === null && member !== null) user = member.get("user");
  const m = new JsonObject()
    .str("id", id)
    .str("account", ix.getString("application_id", "discord"))
    .str("peer", ix.getString("channel_id"))
    .str("text", commandText(data));
  // A command is always addressed to the app. A guild channel or a group DM (context 2) is many people.
  const guild = ix.getString("guild_id");
  if (guild.length > 0) m.str("guild", guild).bool("group", true).bool("mentioned", true);
  else if (<i32>ix.getNumber("context", 1) == 2) m.bool("group", true).bool("mentioned", true);
  if (user !== null) m.str("sender", user.getString("id"));
  output('{"messages":[' + m.toString() + '],"reply":{"status":200,"headers":{"content-type":"application/json"},"body":"{\\"type\\":5}"}}');
  return 0;
}

export function format_outgoing(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("bad input");
  const key = "ix:" + req.getString("in_reply_to");
  const saved = kvGet(key);
  if (saved === null) return fail("no pending interaction for this reply");
  const base = Config.get("api_base");
  let text = req.getString("text");
  if (text.length > LIMIT) text = text.substring(0, LIMIT - 1) + "…";
  const url = (base === null ? "https://discord.com" : base) + "/api/v10/webhooks/" + saved + "/messages/@original";
  return sendRequests([outboundRequest("PATCH", url, '{"content-type":"application/json"}', new JsonObject().str("content", text).toString())]);
}
