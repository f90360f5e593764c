/**
 * The channel plugin contract (docs/plugins.md, "Channel plugins"): every built-in channel plugin,
 * loaded as a real .wasm in the real plugin host, passes the same cases from one table — its
 * describe answer matches what the host grants it; a genuine message is read; a handshake gets the
 * platform's answer; an update that is no message, odd but valid fields, and every mutation of a
 * genuine payload that is still a JSON object are read without failing (the host answers 200, never
 * 502); junk fails; format_outgoing sends to the platform's own API, with only its send roles
 * filled in, within the platform's length limit, and sends nothing for an empty text.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  BUILTIN_CHANNEL_HOSTS,
  BUILTIN_CHANNEL_OPTIONAL_ROLES,
  BUILTIN_CHANNEL_ROLES,
} from "../../src/channels/index.ts";
import { paths, setAt, whatsappNotification } from "../helpers/payloads.ts";
import { grant, pluginPath, readWasm, startTestHost, type TestHost } from "../helpers/plugins.ts";

type Body = Record<string, unknown>;
interface Handshake {
  body: unknown;
  reply: { status: number; body: unknown };
}
interface Contract {
  verify: string;
  /** Must every message be answered (Discord: a deferred interaction shows "thinking…")? */
  mustAnswer: boolean;
  /** A genuine text message (`text`), from the platform's documented shape (wire-formats B1–B5). */
  message: (text: string, id: string) => Body;
  /** The peer format_outgoing is given for `message`, and the account. */
  to: { account: string; peer: string };
  /** A genuine update that is not a text message: acknowledged, nothing to answer. */
  notAMessage: Body | null;
  handshake: Handshake | null;
  /** The reply each genuine message gets from the plugin itself (Discord's deferred ACK), or null. */
  ack: unknown;
  /** What a request's body says, for the text sent. */
  textOf: (body: any) => string;
  /** The platform's limit on one message; "split" = longer texts become several, "cut" = shortened. */
  limit: { chars: number; longer: "split" | "cut" } | null;
  /** Whether junk (not JSON, not an object) fails the call (502) or is answered by the plugin itself. */
  junk: "fails" | { status: number };
}

const CONTRACTS: Record<string, Contract> = {
  telegram: {
    verify: "telegram-secret",
    mustAnswer: false,
    message: (text, id) => ({
      update_id: Number(id),
      message: {
        message_id: 3,
        from: { id: 1561073042, is_bot: false, first_name: "Ada" },
        chat: { id: 1561073042, type: "private", first_name: "Ada" },
        date: 1636628439,
        text,
      },
    }),
    to: { account: "bot", peer: "1561073042" },
    notAMessage: {
      update_id: 5,
      my_chat_member: {
        chat: { id: -100123, type: "supergroup" },
        from: { id: 1, is_bot: false, first_name: "A" },
        date: 1,
        old_chat_member: {},
        new_chat_member: {},
      },
    },
    handshake: null,
    ack: null,
    textOf: (b) => b.text,
    limit: { chars: 4096, longer: "split" },
    junk: "fails",
  },
  slack: {
    verify: "slack-v0",
    mustAnswer: false,
    message: (text, id) => ({
      type: "event_callback",
      team_id: "T0001",
      api_app_id: "A1",
      event_id: `Ev${id}`,
      event: {
        type: "message",
        channel: "D024BE91L",
        channel_type: "im",
        user: "U2147483697",
        text,
        ts: "1355517523.000005",
      },
    }),
    to: { account: "A1", peer: "D024BE91L" },
    notAMessage: {
      type: "event_callback",
      team_id: "T0001",
      api_app_id: "A1",
      event_id: "Ev9",
      event: {
        type: "reaction_added",
        user: "U1",
        reaction: "thumbsup",
        item: { type: "message", channel: "C1", ts: "1" },
      },
    },
    handshake: {
      body: { token: "x", challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", type: "url_verification" },
      reply: { status: 200, body: { challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" } },
    },
    ack: null,
    textOf: (b) => b.text,
    limit: null,
    junk: "fails",
  },
  discord: {
    verify: "discord-ed25519",
    mustAnswer: true,
    message: (text, id) => ({
      type: 2,
      id: `7860087297${id}`,
      application_id: "11869",
      token: `tok${id}`,
      user: { id: "53908232506183680", username: "Ada" },
      context: 1,
      channel_id: "645027906669510667",
      data: { name: "ask", options: [{ name: "q", type: 3, value: text }] },
    }),
    to: { account: "11869", peer: "645027906669510667" },
    notAMessage: { type: 3, id: "1", application_id: "11869", token: "t", data: { custom_id: "b", component_type: 2 } },
    handshake: { body: { type: 1 }, reply: { status: 200, body: { type: 1 } } },
    ack: { type: 5 },
    textOf: (b) => b.content,
    limit: { chars: 2000, longer: "cut" },
    junk: "fails",
  },
  whatsapp: {
    verify: "meta-hmac-sha256",
    mustAnswer: false,
    message: (text, id) =>
      whatsappNotification({
        metadata: { display_phone_number: "15550001111", phone_number_id: "106540352242922" },
        contacts: [{ wa_id: "16505551234", profile: { name: "Ada" } }],
        messages: [
          { from: "16505551234", id: `wamid.${id}`, timestamp: "1669233778", type: "text", text: { body: text } },
        ],
      }),
    to: { account: "106540352242922", peer: "16505551234" },
    notAMessage: whatsappNotification({
      metadata: { phone_number_id: "106540352242922" },
      statuses: [{ id: "wamid.X", status: "delivered", timestamp: "1", recipient_id: "16505551234" }],
    }),
    handshake: null,
    ack: null,
    textOf: (b) => b.text.body,
    limit: { chars: 4096, longer: "split" },
    junk: "fails",
  },
  http: {
    verify: "none",
    mustAnswer: false,
    message: (text, id) => ({ peer: "alice", text, id: `m${id}` }),
    to: { account: "default", peer: "alice" },
    notAMessage: null,
    handshake: null,
    ack: null,
    textOf: (b) => b.text,
    limit: null,
    junk: { status: 400 },
  },
};
const NAMES = Object.keys(CONTRACTS);

let t: TestHost;
beforeAll(async () => {
  t = startTestHost();
  for (const name of NAMES)
    await t.host.load(
      grant(name, { allowed_hosts: [...BUILTIN_CHANNEL_HOSTS[name]!] }),
      await readWasm(pluginPath(name)),
    );
});
afterAll(() => t[Symbol.asyncDispose]());

type Parsed = {
  messages: Record<string, unknown>[];
  reply?: { status: number; headers: Record<string, string>; body: string };
};
const parse = async (plugin: string, body: unknown): Promise<Parsed> =>
  JSON.parse(
    await t.host.callRaw(
      plugin,
      "parse_incoming",
      JSON.stringify({
        headers: { "content-type": "application/json" },
        query: {},
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    ),
  );
type Out = { requests: { method: string; url: string; headers: Record<string, string>; body: string }[] };
const format = async (plugin: string, to: object, text: string, inReplyTo: string): Promise<Out> =>
  JSON.parse(await t.host.callRaw(plugin, "format_outgoing", JSON.stringify({ to, text, in_reply_to: inReplyTo })));

/** Roles the host fills only into verification, never into a request (src/channels/boundary.ts). */
const VERIFY_ROLES = new Set(["webhook_secret", "public_key", "app_secret", "signing_secret", "verify_token"]);

describe.each(NAMES)("channel plugin contract: %s", (name) => {
  const c = CONTRACTS[name]!;

  test("describe: a channel of its own id and scheme, wanting only its platform's API and its send roles", () => {
    const d = t.host.get(name)!.description;
    expect(d.kind).toBe("channel");
    expect(d.channel).toMatchObject({ id: name, verify: c.verify, must_answer: c.mustAnswer });
    expect(d.wants.hosts).toEqual([...BUILTIN_CHANNEL_HOSTS[name]!]);
    const sendRoles = [...BUILTIN_CHANNEL_ROLES[name]!, ...(BUILTIN_CHANNEL_OPTIONAL_ROLES[name] ?? [])].filter(
      (r) => !VERIFY_ROLES.has(r),
    );
    expect(d.wants.secrets).toEqual(sendRoles);
  });

  test("a genuine message is read: one message with its id, account, peer and text", async () => {
    const out = await parse(name, c.message("héllo 👋 wörld", "101"));
    expect(out.messages).toHaveLength(1);
    expect(out.messages[0]).toMatchObject({
      account: c.to.account,
      peer: c.to.peer,
      text: expect.stringContaining("héllo 👋 wörld"),
    });
    expect(String(out.messages[0]!.id).length).toBeGreaterThan(0);
    // Two different messages have different ids (the host dedupes by it); the same one the same.
    const again = await parse(name, c.message("héllo 👋 wörld", "101"));
    const other = await parse(name, c.message("héllo 👋 wörld", "102"));
    expect(again.messages[0]!.id).toBe(out.messages[0]!.id);
    expect(other.messages[0]!.id).not.toBe(out.messages[0]!.id);
    expect(out.reply === undefined ? null : JSON.parse(out.reply.body)).toEqual(c.ack);
  });

  // Only where the platform has a handshake of its own (a case that does not apply is no test, not a skip).
  if (c.handshake !== null)
    test("a handshake gets the platform's answer, as JSON, and no message", async () => {
      const out = await parse(name, c.handshake!.body);
      expect(out.messages).toEqual([]);
      expect(out.reply!.status).toBe(c.handshake!.reply.status);
      expect(out.reply!.headers["content-type"]).toBe("application/json");
      expect(JSON.parse(out.reply!.body)).toEqual(c.handshake!.reply.body);
    });

  if (c.notAMessage !== null)
    test("an update that is not a text message is acknowledged with nothing to answer", async () => {
      const out = await parse(name, c.notAMessage);
      expect(out.messages).toEqual([]);
      if (out.reply) expect(out.reply.status).toBe(200);
    });

  test("odd but valid fields are read and answered: a 5,000-character id, unknown fields, a huge number, an empty text", async () => {
    const genuine = c.message("odd", "103");
    const withExtras = { ...genuine, a_field_from_next_year: { nested: [1, "x", null] }, version: 2 ** 53 + 1 };
    const out = await parse(name, withExtras);
    expect(out.messages).toHaveLength(1);
    const longId = JSON.parse(
      JSON.stringify(genuine).replace(/"(Ev103|7860087297103|wamid\.103|m103)"/, `"$1${"x".repeat(5000)}"`),
    );
    const long = await parse(name, name === "telegram" ? { ...genuine, update_id: 2 ** 62 } : longId);
    expect(long.messages).toHaveLength(1);
    if (name !== "telegram") expect(String(long.messages[0]!.id).length).toBeGreaterThan(5000);
    // …and answered: the reply to the long id is formatted like any other.
    const lm = long.messages[0]!;
    const reply = await format(name, { account: lm.account, peer: lm.peer }, "ok", String(lm.id));
    expect(reply.requests).toHaveLength(name === "http" ? 0 : 1);
    const empty = await parse(name, c.message("", "104"));
    // An empty text is no message for the http channel (400); the platforms' plugins still report it.
    if (c.junk === "fails") expect(empty.messages.length).toBeLessThanOrEqual(1);
  });

  test("every mutation of a genuine payload that is still a JSON object is read without failing", async () => {
    const template = c.message("hi", "105");
    const leaf = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.jsonValue({ maxDepth: 2 }),
      fc.constant("x".repeat(400)),
      fc.constant(2 ** 53 + 1),
    );
    const edits = fc.array(fc.tuple(fc.nat(), leaf, fc.boolean()), { minLength: 1, maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(edits, async (list) => {
        let v: unknown = template;
        for (const [i, value, remove] of list) {
          const ps = paths(v).filter((p) => p.length > 0);
          if (ps.length === 0) break;
          v = setAt(v, ps[i % ps.length]!, value, remove);
        }
        const out = await parse(name, v);
        expect(Array.isArray(out.messages)).toBe(true);
      }),
      { numRuns: 60, seed: 10 },
    );
  });

  test("junk — not JSON, or JSON that is not an object — fails the call or is answered by the plugin", async () => {
    for (const body of ["not json {", "[1,2,3]", '"a string"', "null"]) {
      if (c.junk === "fails") await expect(parse(name, body)).rejects.toThrow(/the body is not/);
      else expect((await parse(name, body)).reply!.status).toBe(c.junk.status);
    }
  });

  test("format_outgoing: to the platform's own API, only send roles filled in, the text within the limit; nothing for an empty text", async () => {
    const parsed = await parse(name, c.message("question", "106"));
    const m = parsed.messages[0]!;
    const to = { account: m.account, peer: m.peer };
    const out = await format(name, to, "the answer", String(m.id));
    if (name === "http") {
      expect(out.requests).toEqual([]);
      return;
    }
    expect(out.requests).toHaveLength(1);
    const r = out.requests[0]!;
    expect(BUILTIN_CHANNEL_HOSTS[name]).toContain(new URL(r.url.replaceAll("{{", "").replaceAll("}}", "")).host);
    expect(r.url.startsWith("https://")).toBe(true);
    expect(c.textOf(JSON.parse(r.body))).toBe("the answer");
    const placeholders = [...`${r.url} ${JSON.stringify(r.headers)}`.matchAll(/\{\{secret:([a-z_]+)\}\}/g)].map(
      (x) => x[1]!,
    );
    for (const role of placeholders) {
      expect(VERIFY_ROLES.has(role)).toBe(false);
      expect(BUILTIN_CHANNEL_ROLES[name]).toContain(role);
    }
    if (c.limit) {
      const long = "ab".repeat(c.limit.chars) + "!";
      const split = await format(name, to, long, String(m.id));
      const texts = split.requests.map((x) => c.textOf(JSON.parse(x.body)));
      for (const text of texts) expect(text.length).toBeLessThanOrEqual(c.limit.chars);
      if (c.limit.longer === "split") expect(texts.join("")).toBe(long);
      else expect(texts).toEqual([long.slice(0, c.limit.chars - 1) + "…"]);
    }
    if (name === "telegram") expect((await format(name, to, "", String(m.id))).requests).toEqual([]);
  });

  // The http channel answers in the webhook's response and sends nothing, whatever it is given.
  if (name !== "http")
    test("format_outgoing without a recipient fails, naming what it needs", async () => {
      await expect(t.host.callRaw(name, "format_outgoing", JSON.stringify({ text: "x" }))).rejects.toThrow(
        /format_outgoing needs \{to, text\}/,
      );
    });
});
