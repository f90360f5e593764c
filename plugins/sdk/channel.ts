// The shared part of the built-in channel plugins (telegram, slack, discord, whatsapp, http): their
// describe answer, reading parse_incoming's and format_outgoing's input (with the approvals' buttons),
// and writing their outputs in the host's shapes (docs/plugins.md, "Channel plugins"). Each plugin keeps only its platform's
// own reading and formatting; scripts/build-plugins.ts rebuilds every plugin when this file changes.
import { Config } from "@extism/as-pdk";
import { fail, input, output } from "./index";
import { JsonKind, JsonObject, JsonParser, JsonValue, quote } from "./json";

/** The channel plugin's `describe` output; returns 0 for the export to return. */
export function describeChannel(
  name: string,
  description: string,
  verify: string,
  sendResult: string,
  hosts: Array<string>,
  secrets: Array<string>,
  mustAnswer: bool = false,
  /** format_outgoing turns `buttons` into the platform's buttons, and a press comes back with `action` (approvals). */
  buttons: bool = false,
): i32 {
  const channel = new JsonObject().str("id", name).str("verify", verify);
  if (sendResult.length > 0) channel.str("send_result", sendResult);
  if (mustAnswer) channel.bool("must_answer", true);
  if (buttons) channel.bool("buttons", true);
  const wants = new JsonObject().raw("hosts", stringArray(hosts)).raw("paths", "[]").raw("secrets", stringArray(secrets));
  output(
    new JsonObject()
      .num("abi", 1)
      .str("name", name)
      .str("version", "1.0.0")
      .str("kind", "channel")
      .str("description", description)
      .raw("channel", channel.toString())
      .raw("wants", wants.toString())
      .toString(),
  );
  return 0;
}

function stringArray(items: Array<string>): string {
  const parts = new Array<string>();
  for (let i = 0; i < items.length; i++) parts.push(quote(items[i]));
  return "[" + parts.join(",") + "]";
}

/** parse_incoming's input: the webhook request, its body read as JSON. */
export class Incoming {
  constructor(
    /** `{headers, body, query, bot_username?}` as the host sent it. */
    public request: JsonValue,
    /** The body parsed as JSON, or null when it is not JSON. */
    public body: JsonValue | null,
  ) {}

  /** The body as the platform sent it (a form-encoded one is not JSON). */
  raw(): string {
    return this.request.getString("body");
  }

  /** The body when it is a JSON object, else null. */
  object(): JsonValue | null {
    const b = this.body;
    return b !== null && b.kind == JsonKind.Object ? b : null;
  }

  /** The channel's `owner` (`[channels.X] owner`, the operator's id on the platform); "" when not set. */
  owner(): string {
    return this.request.getString("owner");
  }

  /** The channel's `bot_username` (`[channels.X]`, else the plugin's config), without "@", lower case; "" when not set. */
  botUsername(): string {
    let name = this.request.getString("bot_username");
    if (name.length == 0) {
      const configured = Config.get("bot_username");
      if (configured !== null) name = configured;
    }
    return (name.startsWith("@") ? name.substring(1) : name).toLowerCase();
  }
}

/** Reads parse_incoming's input; null when the host sent something that is not `{headers, body, query}`. */
export function readIncoming(): Incoming | null {
  const req = new JsonParser(input()).parse();
  if (req === null || req.kind != JsonKind.Object) return null;
  return new Incoming(req, new JsonParser(req.getString("body")).parse());
}

/** Fails parse_incoming: the body is not what the platform sends (the host answers 502). */
export function unreadable(what: string): i32 {
  return fail("the body is not " + what);
}

/** One message for the host: the fields every channel message has. */
export function inboundMessage(id: string, account: string, peer: string, text: string): JsonObject {
  return new JsonObject().str("id", id).str("account", account).str("peer", peer).str("text", text);
}

/** parse_incoming's output: these messages (serialized JsonObjects), and no reply of the plugin's own. */
export function messages(list: Array<string>): i32 {
  output('{"messages":[' + list.join(",") + "]}");
  return 0;
}

/** parse_incoming's output for a request to acknowledge and ignore. */
export function noMessages(): i32 {
  return messages([]);
}

/** A button press for the host: a message with no text whose `action.data` is the button's data. */
export function buttonPress(id: string, account: string, peer: string, sender: string, data: string): JsonObject {
  return inboundMessage(id, account, peer, "").str("sender", sender).raw("action", new JsonObject().str("data", data).toString());
}

/** parse_incoming's output: `list` and the plugin's own answer to the webhook (a handshake, a deferred ack). */
export function messagesWithReply(list: Array<string>, status: i32, contentType: string, body: string): i32 {
  const reply = new JsonObject().num("status", <f64>status).raw("headers", new JsonObject().str("content-type", contentType).toString()).str("body", body);
  output('{"messages":[' + list.join(",") + '],"reply":' + reply.toString() + "}");
  return 0;
}

/** format_outgoing's input: where the reply goes and what it says. */
export class Outgoing {
  constructor(
    public to: JsonValue,
    public text: string,
    /** The id of the message this answers. */
    public inReplyTo: string,
    /** `[{text, data}]` to show as the platform's buttons (plugins that declare `buttons`), or null. */
    public buttons: JsonValue | null = null,
    /** A message that answers nothing (an approval request to the owner, the decision after a press): `to.peer` is a person. */
    public notice: bool = false,
  ) {}

  /** The buttons to show, when there are any. */
  hasButtons(): bool {
    const b = this.buttons;
    return b !== null && b.kind == JsonKind.Array && b.items.length > 0;
  }

  account(): string {
    return this.to.getString("account");
  }
  peer(): string {
    return this.to.getString("peer");
  }
  thread(): string {
    return this.to.getString("thread");
  }
}

/** Reads format_outgoing's input; null (fail with it) when it has no recipient. */
export function readOutgoing(): Outgoing | null {
  const req = new JsonParser(input()).parse();
  if (req === null) return null;
  const to = req.get("to");
  if (to === null || to.kind != JsonKind.Object) return null;
  const notice = req.get("notice");
  return new Outgoing(to, req.getString("text"), req.getString("in_reply_to"), req.get("buttons"), notice !== null && notice.kind == JsonKind.Bool && notice.bool);
}

/** Fails format_outgoing for an input without a recipient. */
export function noRecipient(): i32 {
  return fail("format_outgoing needs {to, text}");
}

/** The platform's API origin: the plugin config's `api_base` (a proxy, a test double), else `origin`. */
export function apiBase(origin: string): string {
  const base = Config.get("api_base");
  return base === null ? origin : base;
}

/** Splits `text` into pieces of at most `limit` UTF-16 units (one empty piece for an empty text). */
export function pieces(text: string, limit: i32): Array<string> {
  const out = new Array<string>();
  for (let i = 0; i < text.length || i == 0; i += limit) out.push(text.substring(i, i + limit));
  return out;
}

/** Whether `s` is a (possibly negative) decimal integer of at most 20 characters. */
export function isInteger(s: string): bool {
  if (s.length == 0 || s.length > 20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c >= 0x30 && c <= 0x39) && !(i == 0 && c == 0x2d && s.length > 1)) return false;
  }
  return true;
}
