/**
 * Fault injection (issue 15): the SQLite store stops taking writes at run time — its file made
 * immutable (`chattr +i`, as root) and its filesystem filled (a 2 MiB tmpfs mounted as root). A turn
 * then fails with a clear store error, nothing half-written reaches the history, the gateway keeps
 * answering, and once the file is writable / the disk has room again the next turn works. Both need
 * root; without it they are skipped, and the test name says so.
 */
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

const root = process.getuid?.() === 0;
const run = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { encoding: "utf8" });
/** Whether `mount -t tmpfs` works here (root in a container may still be refused). */
function canMount(): boolean {
  if (!root) return false;
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-mnt-probe-"));
  try {
    if (run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).status !== 0) return false;
    run("umount", dir);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const mountable = canMount();
const chattrWorks = root && run("chattr", "--help").error === undefined;

const stream: StreamFn = async function* (req) {
  const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
  yield { type: "text", text: `echo ${text.length}` };
  yield { type: "done", stop_reason: "end_turn" };
};
type Msg = Record<string, any>;
/** The message of the turn's error event (chat.send's result says only stop_reason "error"). */
const turnError = (ws: { received: { value: unknown }[] }, id: number) =>
  ws.received
    .map((m) => m.value as Msg)
    .find((m) => m.method === "chat.event" && m.params.id === id && m.params.event === "error")?.params.data.message ??
  "";
const roles = async (gw: Awaited<ReturnType<typeof startTestGateway>>) =>
  (await gw.store.history("main:ws:local:main", { limit: 100 })).map((m) => m.role);

test.skipIf(!chattrWorks)(
  `the database file made immutable at run time: a clear store error, nothing half-written, back once writable${chattrWorks ? "" : " (skipped: needs root and chattr)"}`,
  async () => {
    await using gw = await startTestGateway({ streamFor: () => stream });
    await using ws = await openSocket(gw.wsUrl);
    expect(((await ws.call("chat.send", { content: "first" }, 1)) as Msg).result?.text).toBe("echo 5");
    const files = readdirSync(gw.home)
      .filter((f) => f.startsWith("exoclaw.db"))
      .map((f) => join(gw.home, f));
    const frozen = files.filter((f) => !f.endsWith("-shm"));
    try {
      for (const f of frozen) expect(run("chattr", "+i", f).status).toBe(0);
      const r = (await ws.call("chat.send", { content: "second" }, 2)) as Msg;
      expect(r.result?.stop_reason).toBe("error");
      expect(turnError(ws, 2)).toContain("disk I/O error: is the file immutable");
      expect(turnError(ws, 2)).toContain("nothing was written");
      expect(turnError(ws, 2)).toContain("exoclaw.db");
      expect(roles(gw)).resolves.toEqual(["user", "assistant"]);
      expect((await ws.call("ping", undefined, 3)).result).toBe("pong");
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    } finally {
      for (const f of frozen) run("chattr", "-i", f);
    }
    expect(((await ws.call("chat.send", { content: "third" }, 4)) as Msg).result?.text).toBe("echo 5");
    expect(await roles(gw)).toEqual(["user", "assistant", "user", "assistant"]);
  },
);

test.skipIf(!mountable)(
  `the disk fills at run time: a clear store error, nothing half-written, back once there is room${mountable ? "" : " (skipped: mount -t tmpfs not permitted)"}`,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "exoclaw-full-"));
    expect(run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).status).toBe(0);
    const filler = join(dir, "filler");
    try {
      const home = join(dir, "home");
      await using gw = await startTestGateway({ home, streamFor: () => stream });
      await using ws = await openSocket(gw.wsUrl);
      expect(((await ws.call("chat.send", { content: "first" }, 1)) as Msg).result?.text).toBe("echo 5");
      // Fill what is left, to the last block.
      run("dd", "if=/dev/zero", `of=${filler}`, "bs=4k");
      const big = "x".repeat(256 * 1024);
      const r = (await ws.call("chat.send", { content: big }, 2)) as Msg;
      expect(r.result?.stop_reason).toBe("error");
      expect(turnError(ws, 2)).toContain("the database or disk is full");
      expect(turnError(ws, 2)).toContain("nothing was written");
      expect(await roles(gw)).toEqual(["user", "assistant"]);
      expect((await ws.call("ping", undefined, 3)).result).toBe("pong");
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
      rmSync(filler);
      const again = (await ws.call("chat.send", { content: big }, 4)) as Msg;
      expect(again.result?.text).toBe(`echo ${big.length}`);
      expect(await roles(gw)).toEqual(["user", "assistant", "user", "assistant"]);
    } finally {
      if (existsSync(filler)) rmSync(filler);
      run("umount", "-l", dir);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
