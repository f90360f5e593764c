/**
 * Approvals on the web control page in a real browser (Debian's Chromium through playwright-core):
 * a tool call of an `approval = "always"` plugin (builtin echo) waits; the chat shows it with Allow
 * and Deny, the Approvals panel lists it; Allow runs it and Deny refuses it, and the history shows the
 * decisions. .ci/run installs chromium; without it this test fails and says so.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../helpers/browser.ts";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway } from "../helpers/gateway.ts";

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

/** Echoes the user's words through the echo tool, then says what it got back. */
const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") {
    yield { type: "text", text: `echo said: ${(last.parts[0] as { content: string }).content}` };
  } else {
    yield {
      type: "tool_call",
      id: `tu${req.messages.length}`,
      name: "echo",
      input: { text: (last.parts[0] as { text: string }).text },
    };
  }
  yield { type: "done", stop_reason: last.role === "tool" ? "end_turn" : "tool_use" };
};

test("Allow and Deny on a waiting tool call, in the chat and the Approvals panel; the history shows the decisions", async () => {
  await using gw = await startTestGateway({
    env: { ANTHROPIC_API_KEY: "sk-ant-web-test" },
    toml: `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n`,
    streamFor: () => stream,
  });
  const deadline = Date.now() + 15_000;
  while (gw.plugins.list().every((p) => p.state !== "loaded") && Date.now() < deadline) await Bun.sleep(20);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(`${gw.url}/`);
    await page.waitForSelector("text=connected to exoclaw");
    await page.fill("#message", "first words");
    await page.click("#send");
    const card = page.locator("#log .approval");
    await card.waitFor();
    expect(await card.textContent()).toContain('[approval needed: echo — always] {"text":"first words"}');
    await page.waitForSelector("#approvals li >> text=echo — always (main:web:browser:web)");
    await card.locator("button", { hasText: "Allow" }).click();
    await page.waitForSelector(".msg.assistant >> text=echo said: first words");
    expect(await card.locator(".decision").textContent()).toBe("allowed (operator)");
    await page.waitForSelector("#approvals >> text=no tool call is waiting");

    // The second call is denied from the panel.
    await page.fill("#message", "second words");
    await page.click("#send");
    await page.waitForSelector("#approvals li >> text=echo — always");
    await page.locator("#approvals li button", { hasText: "Deny" }).click();
    await page.waitForSelector(".msg.assistant >> text=denied by the operator");
    await page.waitForSelector("#log .approval .decision >> text=denied (operator)");

    await page.click("#sessions li.session");
    await page.waitForSelector("text=history of main:web:browser:web");
    const decisions = await page.locator(".msg.decision").allTextContents();
    expect(decisions).toEqual([
      "[approval: echo allowed by operator — always]",
      "[approval: echo denied by operator — always]",
    ]);
    expect(errors).toEqual([]);
  } finally {
    await page.close();
  }
});
