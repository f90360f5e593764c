/**
 * The web control page in a real browser (Debian's Chromium through playwright-core): chat with a
 * streamed reply, sessions, plugins and usage; and the token prompt of a token-protected gateway.
 * .ci/run installs chromium; without it this test fails and says so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway } from "../helpers/gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
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

describe("the web control page", () => {
  test("chat with a streamed reply; sessions and usage update; a strict CSP", async () => {
    await using gw = await startTestGateway({ streamFor: () => stream });
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
});
