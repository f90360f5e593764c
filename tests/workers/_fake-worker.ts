/**
 * A stand-in gateway worker for the supervisor's own test (tests/workers/supervisor.test.ts): the
 * real worker link, a made-up port, and on SIGTERM an exit 0 — unless FAKE_HANG is set, when it
 * ignores SIGTERM (a drain that never ends). SIGHUP is taken (a reload) without dying.
 */
import { WorkerLink } from "../../src/gateway/supervisor.ts";

const index = Number(process.env.EXOCLAW_WORKER);
const link = new WorkerLink(index);
process.on("SIGTERM", () => {
  if (process.env.FAKE_HANG) return;
  link.stop();
  process.exit(0);
});
process.on("SIGHUP", () => {});
link.listening(Number(process.env.EXOCLAW_WORKER_PORT ?? 40_000 + index), {
  connections: () => 7,
  turnsRunning: () => 0,
});
setInterval(() => {}, 60_000);
