/**
 * The web control page as the compiled binary serves it: the page and its script from the binary
 * itself, under a strict Content-Security-Policy, and — in Debian's Chromium (playwright-core) — the
 * page connects, shows the answering agent and model, streams an answer from a fake model, and
 * sends to the session on screen. .ci/run installs chromium; without it this file fails and says so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../../helpers/browser.ts";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";
import { anthropicReply, lastUserText } from "./_replies.ts";

describe.if(NATIVE !== undefined)("the web page served by the binary", () => {
  const home = binaryHome();
  const up = startFakeUpstream((req) => ({ body: anthropicReply(`You said: ${lastUserText(req)} ✓`) }));
  let gw: BinaryGateway;
  let browser: Browser;

  beforeAll(async () => {
    await nativeBinary();
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${up.url}"\n`,
    );
    gw = await startBinaryGateway(home, { env: { ANTHROPIC_API_KEY: "sk-ant-binary-web" } });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("GET / is the page and GET /app.js its script, both from the binary, with a same-origin-only CSP", async () => {
    const page = await fetch(`${gw.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'; script-src 'self'");
    const html = await page.text();
    expect(html).toContain("<title>exoclaw</title>");
    expect(html).toContain('<script src="/app.js"></script>');
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script for the CSP to forbid
    const script = await fetch(`${gw.url}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await script.text()).toContain('"/ws"');
  });

  test("in Chromium: the page connects, names the agent and model, streams an answer, and sends to the session on screen", async () => {
    // A conversation from the CLI, for the page to pick up.
    expect((await runBinary(home, ["chat", "--port", String(gw.port), "--peer", "other", "from the cli"])).stdout).toBe(
      "You said: from the cli ✓\n",
    );
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${gw.url}/`);
      await page.waitForSelector("text=connected to exoclaw");
      await page.waitForSelector("#agent >> text=answered by main — anthropic claude-sonnet-4-5");
      expect(await page.isVisible("#warning")).toBe(false);
      await page.fill("#message", "héllo from the browser");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: héllo from the browser ✓");
      await page.waitForSelector("#sessions >> text=main:web:browser:web (2)");

      await page.click('#sessions li[data-key="main:ws:local:other"]');
      await page.waitForSelector("text=history of main:ws:local:other");
      await page.fill("#message", "follow-up");
      await page.click("#send");
      await page.waitForSelector(".msg.assistant >> text=You said: follow-up ✓");
      await page.waitForSelector("#sessions >> text=main:ws:local:other (4)");
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
    // What the binary stored: the follow-up in the session that was on screen, the page's own untouched.
    const other = await runBinary(home, ["sessions", "show", "main:ws:local:other", "--port", String(gw.port)]);
    expect(
      other.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.replace(/^#\d+ /, "")),
    ).toEqual([
      "user: from the cli",
      "assistant: You said: from the cli ✓",
      "user: follow-up",
      "assistant: You said: follow-up ✓",
    ]);
    const web = await runBinary(home, ["sessions", "show", "main:web:browser:web", "--port", String(gw.port)]);
    expect(web.stdout.split("\n").filter(Boolean)).toHaveLength(2);
    expect(gw.stderr()).toBe("");
  }, 60_000);
});
