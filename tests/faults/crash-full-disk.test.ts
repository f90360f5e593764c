/**
 * Fault injection (issue 15), two at once: the gateway SIGKILLed in the middle of a turn while its
 * disk is full. A real `exoclaw gateway` process (bun src/main.ts) keeps its state on a 4 MiB tmpfs
 * and talks to a fake OpenAI upstream on loopback; a second turn is streaming when the disk is
 * filled to the last block and the process killed. What holds: started again on the still-full
 * disk, the gateway either serves or refuses with a clear error that says the disk is full (no
 * stack trace); with room again it serves, the database passes SQLite's integrity check, nothing it
 * had accepted is lost (the first turn, both write-ahead usage rows) and nothing is half-written
 * (no lone user message of the killed turn); the next turn works. Needs root (mount -t tmpfs);
 * skipped without, saying so.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";
import { openSocket } from "../helpers/ws.ts";
import { eventually } from "../fuzz/_fuzz.ts";

const ROOT = join(import.meta.dir, "../..");
const run = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { encoding: "utf8" });
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
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

const body = readFileSync(join(ROOT, "tests/fixtures/providers/openai/text-unicode.txt"), "utf8");
/** The byte count up to the end of the second text delta: the stream hangs there, mid-answer. */
const midAnswer = (() => {
  const end = body.indexOf("\n\n", body.indexOf("Es schneit")) + 2;
  return new TextEncoder().encode(body.slice(0, end)).length;
})();
/** The whole answer text of the fixture (what a completed turn stores). */
const answerText = body
  .split("\n")
  .filter((l) => l.startsWith("data: {"))
  .map((l) => (JSON.parse(l.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content)
  .filter((t): t is string => typeof t === "string")
  .join("");

type Msg = Record<string, any>;

/** `exoclaw gateway --port 0` on `home`; resolves with its port, or with its exit and output if it does not start. */
async function startGateway(home: string) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "gateway", "--port", "0"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: home, EXOCLAW_HOME: home, EXOCLAW_LOG: "info" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  void (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c);
  })();
  void (async () => {
    for await (const c of proc.stderr) err += new TextDecoder().decode(c);
  })();
  const port = () => /"port":(\d+)/.exec(out.split("\n").find((l) => l.includes("gateway listening")) ?? "")?.[1];
  await eventually(() => port() !== undefined || proc.exitCode !== null, 20_000);
  const p = port();
  return { proc, port: p === undefined ? null : Number(p), output: () => out + err };
}

test.skipIf(!mountable)(
  `SIGKILL mid-turn on a full disk: restarted it serves or says the disk is full; with room nothing accepted is lost, nothing half-written${mountable ? "" : " (skipped: mount -t tmpfs not permitted)"}`,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "exoclaw-crashfull-"));
    expect(run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).status).toBe(0);
    const filler = join(dir, "filler");
    const procs: Bun.Subprocess[] = [];
    await using up = startFakeUpstream((_req, n) => ({
      headers: { "content-type": "text/event-stream" },
      body,
      ...(n === 2 && { hangAfterBytes: midAnswer }),
    }));
    try {
      const home = join(dir, "home");
      mkdirSync(home, { mode: 0o700 });
      writeFileSync(
        join(home, "config.toml"),
        `[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "k"\nbase_url = "${up.url}"\nmax_tokens = 500\n`,
      );
      const first = await startGateway(home);
      procs.push(first.proc);
      expect(first.port, first.output()).not.toBeNull();
      const wsUrl = (port: number) => `ws://127.0.0.1:${port}/ws`;
      {
        await using ws = await openSocket(wsUrl(first.port!));
        const r = (await ws.call("chat.send", { content: "one" }, 1)) as Msg;
        expect(r.result?.text).toBe(answerText);
        // The second turn: its request is out and the answer is streaming when the disk fills up.
        ws.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "chat.send", params: { content: "two" } }));
        expect(await eventually(() => up.requests.length === 2, 10_000)).toBe(true);
        expect(await eventually(() => ws.received.some((m) => (m.value as Msg).params?.event === "text"), 10_000)).toBe(
          true,
        );
        run("dd", "if=/dev/zero", `of=${filler}`, "bs=4k");
        first.proc.kill("SIGKILL");
        await first.proc.exited;
        expect(first.proc.signalCode).toBe("SIGKILL");
      }

      // Started again on the still-full disk: serving, or a clear refusal that names the cause.
      const onFull = await startGateway(home);
      procs.push(onFull.proc);
      if (onFull.port !== null) {
        expect((await fetch(`http://127.0.0.1:${onFull.port}/health`)).status).toBe(200);
        onFull.proc.kill("SIGTERM");
        await onFull.proc.exited;
      } else {
        await onFull.proc.exited;
        expect(onFull.proc.exitCode).not.toBe(0);
        expect(onFull.output()).toMatch(/disk is full|no space left/i);
        expect(onFull.output()).not.toMatch(/\n\s+at .*\(|\/src\//);
      }

      // Room again: it serves, nothing accepted is lost, nothing half-written.
      rmSync(filler);
      const again = await startGateway(home);
      procs.push(again.proc);
      expect(again.port, again.output()).not.toBeNull();
      {
        await using ws = await openSocket(wsUrl(again.port!));
        const h = (await ws.call("chat.history", { session: "main:ws:local:main" }, 1)) as Msg;
        const said = (h.result?.messages ?? h.result) as Msg[];
        expect(said.map((m) => [m.role, m.parts?.[0]?.text ?? m.content])).toEqual([
          ["user", "one"],
          ["assistant", answerText],
        ]);
        const r = (await ws.call("chat.send", { content: "three" }, 2)) as Msg;
        expect(r.result?.text).toBe(answerText);
        expect((await ws.call("ping", undefined, 3)).result).toBe("pong");
      }
      again.proc.kill("SIGTERM");
      await again.proc.exited;
      const db = new Database(join(home, "exoclaw.db"), { readonly: true });
      try {
        expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
        // Write-ahead usage: the killed call's row (prompt estimate + max_tokens) was on disk before its request.
        const rows = db.query("SELECT output_tokens FROM usage ORDER BY rowid").all() as { output_tokens: number }[];
        expect(rows.length).toBe(3);
      } finally {
        db.close();
      }
    } finally {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited));
      if (existsSync(filler)) rmSync(filler);
      run("umount", "-l", dir);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  60_000,
);
