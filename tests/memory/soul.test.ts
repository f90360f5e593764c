import { expect, test } from "bun:test";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { SOUL_CHECK_MS } from "../../src/memory/soul.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

test("SOUL.md leads the system prompt and is re-read when it changes, without a restart", async () => {
  using home = tempDir();
  home.file("config.toml", '[[agents]]\nid = "main"\nsystem_prompt = "Answer briefly."\n');
  const dir = join(home.path, "agents/main");
  mkdirSync(dir, { recursive: true });
  const soul = join(dir, "SOUL.md");
  writeFileSync(soul, "You are Ada, a patient tutor.\n");
  const seen: ChatRequest[] = [];
  const stream: StreamFn = async function* (req) {
    seen.push(req);
    yield { type: "text", text: "ok" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
  await using ws = await openSocket(gw.wsUrl);
  await ws.call("chat.send", { content: "hi" });
  expect(seen[0]!.system).toBe("You are Ada, a patient tutor.\n\nAnswer briefly.");
  writeFileSync(soul, "You are Grace, a terse engineer.");
  utimesSync(soul, new Date(), new Date(Date.now() + 5000));
  await Bun.sleep(SOUL_CHECK_MS + 100); // the file is looked at again at most once a second
  await ws.call("chat.send", { content: "again" });
  expect(seen[1]!.system).toBe("You are Grace, a terse engineer.\n\nAnswer briefly.");
  (await import("node:fs")).rmSync(soul);
  await Bun.sleep(SOUL_CHECK_MS + 100);
  await ws.call("chat.send", { content: "and now?" });
  expect(seen[2]!.system).toBe("Answer briefly.");
});
