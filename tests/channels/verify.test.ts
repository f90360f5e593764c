/** Signature verification against the signed test vectors in wire-formats.md (and their negatives). */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { verifyWebhook } from "../../src/channels/verify.ts";

const vector = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "../fixtures/webhooks", name)));
const bytes = (s: string) => new TextEncoder().encode(s);
const secrets = (map: Record<string, string>) => (role: string) => map[role] ?? null;

describe("telegram-secret", () => {
  const s = secrets({ webhook_secret: "S3cr3t_token-1" });
  test("the right header passes; wrong, longer, shorter or missing fail", () => {
    const req = (token?: string) => ({
      headers: (token === undefined ? {} : { "x-telegram-bot-api-secret-token": token }) as Record<string, string>,
      rawBody: bytes("{}"),
    });
    expect(verifyWebhook("telegram-secret", req("S3cr3t_token-1"), s)).toEqual({ ok: true });
    for (const bad of ["S3cr3t_token-2", "S3cr3t_token-1x", "S3cr3t_token-", ""])
      expect(verifyWebhook("telegram-secret", req(bad), s).ok).toBe(false);
    expect(verifyWebhook("telegram-secret", req(), s)).toEqual({
      ok: false,
      reason: "missing X-Telegram-Bot-Api-Secret-Token",
    });
    expect(verifyWebhook("telegram-secret", req("S3cr3t_token-1"), secrets({}))).toEqual({
      ok: false,
      reason: "no webhook_secret configured for this channel",
    });
  });
});

describe("discord-ed25519 (RFC 8032 TEST 1 key)", () => {
  const s = secrets({ public_key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" });
  const ping = {
    "x-signature-ed25519":
      "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f",
    "x-signature-timestamp": "1700000000",
  };
  test("PING and the slash command vector verify", () => {
    expect(verifyWebhook("discord-ed25519", { headers: ping, rawBody: bytes('{"type":1}') }, s, 1700000000)).toEqual({
      ok: true,
    });
    const cmd = {
      "x-signature-ed25519":
        "8a16b4c7b3b595186d9c3cfb55911bf62296f2f2d68c9ddca0312394fa7d613f78d869f6a44be7e29b3b487dcd8c922b205ac93eecbbab9ae88ddef929d97b01",
      "x-signature-timestamp": "1700000123",
    };
    expect(
      verifyWebhook("discord-ed25519", { headers: cmd, rawBody: vector("discord_cmd_body.json") }, s, 1700000123 + 300),
    ).toEqual({ ok: true });
  });
  test("a correctly signed request replayed outside the 5-minute window is refused", () => {
    const old = { rawBody: bytes('{"type":1}'), headers: ping };
    expect(verifyWebhook("discord-ed25519", old, s, 1700000000 + 301)).toEqual({
      ok: false,
      reason: "timestamp outside the 5-minute replay window",
    });
    expect(verifyWebhook("discord-ed25519", old, s, 1700000000 - 301)).toEqual({
      ok: false,
      reason: "timestamp outside the 5-minute replay window",
    });
    expect(verifyWebhook("discord-ed25519", old, s).ok).toBe(false); // today's clock
    expect(
      verifyWebhook(
        "discord-ed25519",
        { ...old, headers: { ...ping, "x-signature-timestamp": "1700000000.0" } },
        s,
        1700000000,
      ).ok,
    ).toBe(false);
  });
  test("another body, another timestamp, a re-serialized body, garbage: all fail", () => {
    const t = 1700000000;
    expect(verifyWebhook("discord-ed25519", { headers: ping, rawBody: bytes('{"type":2}') }, s, t)).toEqual({
      ok: false,
      reason: "invalid request signature",
    });
    expect(
      verifyWebhook(
        "discord-ed25519",
        { headers: { ...ping, "x-signature-timestamp": "1700000001" }, rawBody: bytes('{"type":1}') },
        s,
        t,
      ),
    ).toEqual({ ok: false, reason: "invalid request signature" });
    expect(verifyWebhook("discord-ed25519", { headers: ping, rawBody: bytes('{ "type": 1 }') }, s, t)).toEqual({
      ok: false,
      reason: "invalid request signature",
    });
    expect(
      verifyWebhook(
        "discord-ed25519",
        { headers: { ...ping, "x-signature-ed25519": "zz" }, rawBody: bytes('{"type":1}') },
        s,
        t,
      ).ok,
    ).toBe(false);
    expect(
      verifyWebhook(
        "discord-ed25519",
        { headers: ping, rawBody: bytes('{"type":1}') },
        secrets({ public_key: "abcd" }),
      ),
    ).toEqual({ ok: false, reason: "no valid public_key configured for this channel" });
  });
});

describe("meta-hmac-sha256 (WhatsApp)", () => {
  test("the published HMAC and the 499-byte body vector verify; a changed byte fails", () => {
    expect(
      verifyWebhook(
        "meta-hmac-sha256",
        {
          headers: { "x-hub-signature-256": "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914" },
          rawBody: bytes("test"),
        },
        secrets({ app_secret: "secret" }),
      ),
    ).toEqual({ ok: true });
    const body = vector("wa_body.json");
    expect(body.length).toBe(499);
    const s = secrets({ app_secret: "test_app_secret" });
    const headers = {
      "x-hub-signature-256": "sha256=ded1d1d9621cffa39832ccf2b330fa476b4dc8ec2a5d102e1e554312b3f21d42",
    };
    expect(verifyWebhook("meta-hmac-sha256", { headers, rawBody: body }, s)).toEqual({ ok: true });
    const changed = body.slice();
    changed[100] = changed[100]! ^ 1;
    expect(verifyWebhook("meta-hmac-sha256", { headers, rawBody: changed }, s).ok).toBe(false);
    expect(
      verifyWebhook(
        "meta-hmac-sha256",
        { headers: { "x-hub-signature-256": headers["x-hub-signature-256"].slice(7) }, rawBody: body },
        s,
      ).ok,
    ).toBe(false);
  });
});

describe("slack-v0", () => {
  const s = secrets({ signing_secret: "8f742231b10e8888abcd99yyyzzz85a5" });
  const form =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  const h = (ts: string, sig: string) => ({ "x-slack-request-timestamp": ts, "x-slack-signature": sig });
  test("the official sample, url_verification and the message.im vectors verify (clock injected)", () => {
    expect(
      verifyWebhook(
        "slack-v0",
        {
          headers: h("1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
          rawBody: bytes(form),
        },
        s,
        1531420618,
      ),
    ).toEqual({ ok: true });
    const verification =
      '{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}';
    expect(
      verifyWebhook(
        "slack-v0",
        {
          headers: h("1531420618", "v0=f9bd80929259f3f6d5fe3a3186c453c89cd1ad4862815a15837584f31c993652"),
          rawBody: bytes(verification),
        },
        s,
        1531420700,
      ),
    ).toEqual({ ok: true });
    expect(
      verifyWebhook(
        "slack-v0",
        {
          headers: h("1355517523", "v0=ea761e135f81d281bf0baf5c99c529d3bae8b53b6682eda17881fc346000117b"),
          rawBody: vector("slack_event_body.json"),
        },
        s,
        1355517523 + 300,
      ),
    ).toEqual({ ok: true });
  });
  test("a 301-second skew, a changed byte, a missing v0= prefix: all fail", () => {
    const sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    expect(
      verifyWebhook("slack-v0", { headers: h("1531420618", sig), rawBody: bytes(form) }, s, 1531420618 + 301),
    ).toEqual({ ok: false, reason: "timestamp outside the 5-minute replay window" });
    expect(
      verifyWebhook("slack-v0", { headers: h("1531420618", sig), rawBody: bytes(form) }, s, 1531420618 - 301).ok,
    ).toBe(false);
    expect(
      verifyWebhook(
        "slack-v0",
        { headers: h("1531420618", sig), rawBody: bytes(form.replace("foobar", "foobaz")) },
        s,
        1531420618,
      ).ok,
    ).toBe(false);
    expect(
      verifyWebhook("slack-v0", { headers: h("1531420618", sig.slice(3)), rawBody: bytes(form) }, s, 1531420618),
    ).toEqual({ ok: false, reason: "missing v0= signature" });
    expect(verifyWebhook("slack-v0", { headers: {}, rawBody: bytes(form) }, s, 1531420618).ok).toBe(false);
  });
});

test("none accepts anything", () => {
  expect(verifyWebhook("none", { headers: {}, rawBody: bytes("x") }, () => null)).toEqual({ ok: true });
});
