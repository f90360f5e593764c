/**
 * The web control page in a real browser (Debian's Chromium through playwright-core): chat with a
 * streamed reply, sessions, people (pairing), plugins and usage; and the token prompt of a
 * token-protected gateway.
 * .ci/run installs chromium; without it this test fails and says so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../helpers/browser.ts";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { fakeBotApi, postUpdate, telegramHome } from "../helpers/telegram.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

const stream: StreamFn = async function* (req) {
  const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
  for (const piece of ["You said: ", text, " ✓"]) {
    await Bun.sleep(5);
    yield { type: "text", text: piece };
  }
  yield { type: "usage", input_tokens: 12, output_tokens: 4 };
  yield { type: "done", stop_reason: "end_turn" };
};

const KEYED = { env: { ANTHROPIC_API_KEY: "sk-ant-web-test" } };

describe("the web control page", () => {
  test("chat with a streamed reply; sessions and usage update; a strict CSP", async () => {
    await using gw = await startTestGateway({ ...KEYED, streamFor: () => stream });
    const res = await fetch(`${gw.url}/`);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("text=connected to exoclaw");
      await page.fill("#message", "héllo from the browser");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: héllo from the browser ✓");
      await page.waitForSelector("#sessions >> text=main:web:browser:web (2)");
      expect(await page.textContent("#usage")).toContain("1 calls, 12 in / 4 out");
      await page.click("#sessions li.session");
      await page.waitForSelector("text=history of main:web:browser:web");
      expect(await page.locator(".msg.user").allTextContents()).toEqual(["héllo from the browser"]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  test("a token-protected gateway asks for the token, and a wrong one is refused", async () => {
    await using gw = await startTestGateway({ token: "web-token-42", streamFor: () => stream });
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("text=this gateway needs a token");
      await page.fill("#token", "wrong-token");
      await page.click("#auth button");
      await page.waitForSelector("text=this gateway needs a token");
      await page.fill("#token", "web-token-42");
      await page.click("#auth button");
      await page.waitForSelector("text=connected to exoclaw");
      await page.fill("#message", "hi");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: hi ✓");
    } finally {
      await page.close();
    }
  }, 60_000);

  test("the chat box sends to the session on screen; a platform's session is read-only with a way back; the answering agent is shown (issue 9)", async () => {
    await using gw = await startTestGateway({ ...KEYED, streamFor: () => stream });
    {
      await using s = await openSocket(gw.wsUrl);
      await s.call("chat.send", { content: "from the cli", peer: "other" });
      await s.call("chat.send", { content: "from telegram", channel: "telegram", account: "bot", peer: "42" });
    }
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("text=connected to exoclaw");
      await page.waitForSelector("#agent >> text=answered by main — anthropic claude-sonnet-4-5");
      expect(await page.isVisible("#warning")).toBe(false);
      await page.fill("#message", "mine");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: mine ✓");
      await page.waitForSelector("#viewing >> text=your chat (main:web:browser:web)");

      await page.click('#sessions li[data-key="main:ws:local:other"]');
      await page.waitForSelector("text=history of main:ws:local:other");
      expect(await page.textContent("#viewing")).toBe("session main:ws:local:other");
      await page.fill("#message", "follow-up");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: follow-up ✓");
      // The answer went to the session on screen, not to the page's own.
      await page.waitForSelector("#sessions >> text=main:ws:local:other (4)");
      expect(
        (await gw.store.history("main:ws:local:other", { limit: 10 }))
          .map((m) => m.parts[0])
          .filter((p) => p?.type === "text")
          .map((p) => (p as { text: string }).text),
      ).toEqual(["from the cli", "You said: from the cli ✓", "follow-up", "You said: follow-up ✓"]);
      expect((await gw.store.getSession("main:web:browser:web"))?.message_count).toBe(2);

      await page.click('#sessions li[data-key="main:telegram:bot:42"]');
      await page.waitForSelector("text=history of main:telegram:bot:42");
      expect(await page.isDisabled("#message")).toBe(true);
      expect(await page.getAttribute("#message", "placeholder")).toContain("read-only: a telegram conversation");
      await page.click("text=back to chat");
      await page.waitForSelector("text=history of main:web:browser:web");
      expect(await page.isDisabled("#message")).toBe(false);
      expect(await page.isVisible("#back")).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  test("no API key for the default agent: a warning with the fix, gone once a key is stored (issue 9)", async () => {
    await using gw = await startTestGateway({ streamFor: () => stream });
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("#warning >> text=No API key is configured for agent main (anthropic)");
      expect(await page.textContent("#warning")).toContain("Fix: run exoclaw onboard");
      writeCredential(gw.home, "anthropic", "sk-ant-now-set");
      await page.fill("#message", "hi");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: hi ✓");
      await page.waitForSelector("#warning", { state: "hidden" });
    } finally {
      await page.close();
    }
  }, 60_000);

  test("a gateway restart: the page says it is reconnecting, keeps what was typed meanwhile, and sends it once the gateway is back (issue 9)", async () => {
    using home = tempDir("exoclaw-web-restart-");
    const first = await startTestGateway({ ...KEYED, home: home.path, streamFor: () => stream });
    let firstStopped = false;
    const port = first.port;
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${first.url}/`);
      await page.waitForSelector("text=connected to exoclaw");
      await page.fill("#message", "before");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: before ✓");
      await first[Symbol.asyncDispose]();
      firstStopped = true;
      await page.waitForSelector("#status >> text=disconnected, reconnecting…");
      await page.fill("#message", "while away");
      await page.click("#send");
      await page.waitForSelector(".msg.user.pending >> text=waiting for the gateway");
      await using second = await startTestGateway({ ...KEYED, home: home.path, port, streamFor: () => stream });
      await page.waitForSelector(".msg.assistant >> text=You said: while away ✓");
      await page.waitForSelector("#status >> text=connected to exoclaw");
      expect(await page.locator(".msg.pending").count()).toBe(0);
      const texts = (await second.store.history("main:web:browser:web", { limit: 10 })).map(
        (m) => (m.parts[0] as { text: string }).text,
      );
      expect(texts).toEqual(["before", "You said: before ✓", "while away", "You said: while away ✓"]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      if (!firstStopped) await first[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("People: a stranger's Telegram message shows up with its pairing code; Approve lets them in, Revoke shuts them out again (issue 10)", async () => {
    // A loopback stand-in for api.telegram.org answering sendMessage in the Bot API's shape (wire-formats B1.3).
    await using api = fakeBotApi();
    const { sent } = api;
    using home = telegramHome(api, "", "", "exoclaw-web-people-");
    await using gw = await startTestGateway({ ...KEYED, home: home.path, streamFor: () => stream });
    let updateId = 5000;
    // A Telegram Update from Ada's private chat (wire-formats B1.2); resolves once the gateway handled it.
    const write = async (g: TestGateway, text: string) => {
      const id = ++updateId;
      const body = JSON.stringify({
        update_id: id,
        message: {
          message_id: id,
          from: { id: 1561073042, is_bot: false, first_name: "Ada" },
          chat: { id: 1561073042, type: "private", first_name: "Ada" },
          date: 1636628439,
          text,
        },
      });
      expect((await postUpdate(g, body)).status).toBe(200);
      const deadline = Date.now() + 15_000;
      while ((await g.store.pendingInbound(10)).length > 0) {
        if (Date.now() > deadline) throw new Error("timed out waiting for the gateway to handle the message");
        await Bun.sleep(10);
      }
    };
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("text=connected to exoclaw");
      await page.waitForSelector("#people >> text=nobody yet");

      // The page is open when the stranger writes: they appear without a reload.
      await write(gw, "hello?");
      const code = /pairing code: ([A-Z2-9]{8})/.exec(sent.at(-1)?.text ?? "")?.[1];
      expect(code).toBeDefined();
      const ada = page.locator('#people li[data-person="telegram:bot:1561073042"]');
      await ada.locator(`text=${code}`).waitFor();
      expect(await page.textContent("#people h3")).toBe("telegram");
      expect(await ada.textContent()).toContain("waiting, code");
      await ada.locator("button", { hasText: "Approve" }).click();
      await ada.locator("button", { hasText: "Revoke" }).waitFor();
      expect(await ada.textContent()).toContain("approved just now");
      expect((await gw.store.getPairing("telegram:bot:1561073042"))?.status).toBe("approved");

      // Their next message is answered.
      await write(gw, "now?");
      expect(sent.at(-1)).toEqual({ chat_id: 1561073042, text: "You said: now? ✓" });

      await ada.locator("button", { hasText: "Revoke" }).click();
      await page.waitForSelector("#people >> text=nobody yet");
      await write(gw, "and now?");
      expect(sent.at(-1)!.text).toMatch(/pairing code: [A-Z2-9]{8}/);
      expect(sent.filter((m) => m.text.startsWith("You said"))).toHaveLength(1);
      // And the new stranger's code appears on its own.
      await ada.locator("button", { hasText: "Approve" }).waitFor();
      expect(await page.textContent("#people-error")).toBe("");
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});
