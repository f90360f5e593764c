/**
 * The supervisor on its own (src/gateway/supervisor.ts), with stand-in workers (./_fake-worker.ts)
 * and signals delivered by the test: the first worker's port goes to the others, a killed worker is
 * restarted after its backoff (logged), SIGHUP reaches every worker, SIGTERM drains to exit 0, a
 * worker that never finishes its drain is killed at the stop timeout (exit 1), and a first worker
 * that cannot start ends the supervisor with its exit code.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { createLogger } from "../../src/lib/log.ts";
import { runSupervisor, workerCount } from "../../src/gateway/supervisor.ts";
import { until } from "../helpers/binary.ts";

type Line = Record<string, unknown> & { msg: string };

function rig(env: Record<string, string> = {}, command = [process.execPath, join(import.meta.dir, "_fake-worker.ts")]) {
  const lines: Line[] = [];
  const log = createLogger({ level: "info", format: "json", write: (l) => lines.push(JSON.parse(l) as Line) });
  const handlers = new Map<string, () => void>();
  return {
    lines,
    signal: (s: string) => handlers.get(s)!(),
    start: (count: number, over: { stopTimeoutMs?: number } = {}) =>
      runSupervisor({
        count,
        command,
        env: { PATH: process.env.PATH, ...env },
        log,
        backoffMs: 20,
        onSignal: (s, h) => handlers.set(s, h),
        ...over,
      }),
    waitLog: (msg: string) => until(`the log line "${msg}"`, () => lines.find((l) => l.msg === msg), 15_000),
  };
}

test("workers start on the first one's port, a killed one is restarted after its backoff, SIGHUP reaches all, SIGTERM drains to 0", async () => {
  const r = rig();
  const done = r.start(2);
  const ready = await r.waitLog("workers ready");
  expect(ready).toMatchObject({ workers: 2, port: 40_000 });
  const [, second] = ready.pids as number[];
  process.kill(second!, "SIGKILL");
  expect(await r.waitLog("worker exited; restarting it")).toMatchObject({
    worker: 1,
    pid: second,
    signal: "SIGKILL",
    restart_in_ms: 20,
  });
  const back = await r.waitLog("worker restarted");
  expect(back.worker).toBe(1);
  expect(back.pid).not.toBe(second);
  r.signal("SIGHUP");
  expect(await r.waitLog("reload: SIGHUP forwarded to the workers")).toMatchObject({ workers: 2 });
  r.signal("SIGTERM");
  expect(await done).toBe(0);
  expect(r.lines.at(-1)).toMatchObject({ msg: "workers stopped", exit_code: 0 });
}, 30_000);

test("a worker that never finishes its drain is killed at the stop timeout, and the exit code says so", async () => {
  const r = rig({ FAKE_HANG: "1" });
  const done = r.start(1, { stopTimeoutMs: 300 });
  await r.waitLog("workers ready");
  r.signal("SIGTERM");
  expect(await done).toBe(1);
  expect(r.lines.some((l) => l.msg === "workers still running after the stop timeout; killed")).toBe(true);
}, 30_000);

test("a first worker that cannot start ends the supervisor with its exit code; the others are never started", async () => {
  const r = rig({}, [process.execPath, "-e", "process.exit(3)"]);
  expect(await r.start(3)).toBe(3);
  expect(r.lines.find((l) => l.msg === "the first worker could not start; not starting the others")).toMatchObject({
    exit_code: 3,
  });
});

test('"auto" is one worker per core', () => {
  expect(workerCount("auto")).toBe(navigator.hardwareConcurrency);
  expect(workerCount(3)).toBe(3);
});
