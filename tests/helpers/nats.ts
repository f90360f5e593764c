/**
 * A real nats-server (Debian's) on loopback, stoppable and restartable on its port. The first start
 * asks for port -1 (the server picks a free one, no race with another process taking a port we
 * probed) and reads the port it chose from its "Listening for client connections" line; a restart
 * uses that same port, so clients reconnect to the URL they were given.
 */
import { existsSync } from "node:fs";

const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));

export interface NatsServer extends AsyncDisposable {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts nats-server on `port` (-1: any free one); resolves with the process and its port once it is ready. */
async function spawnServer(
  bin: string,
  port: number,
): Promise<{ proc: Bun.Subprocess<"ignore", "ignore", "pipe">; port: number }> {
  const proc = Bun.spawn([bin, "-a", "127.0.0.1", "-p", String(port)], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let log = "";
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`nats-server exited before it was ready (exit ${await proc.exited}):\n${log}`);
      log += decoder.decode(value, { stream: true });
      const listening = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
      if (listening && /Server is ready/.test(log)) {
        // Keep reading its log, so the server never blocks on a full pipe.
        void (async () => {
          while (!(await reader.read().catch(() => ({ done: true }))).done);
        })();
        return { proc, port: Number(listening[1]) };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

export async function startNatsServer(): Promise<NatsServer> {
  if (!BIN)
    throw new Error(
      "nats-server not found: install Debian's nats-server (apt-get install nats-server), as .ci/run does",
    );
  const first = await spawnServer(BIN, -1);
  let proc: Bun.Subprocess | null = first.proc;
  const server: NatsServer = {
    url: `nats://127.0.0.1:${first.port}`,
    port: first.port,
    async start() {
      if (proc) return;
      proc = (await spawnServer(BIN, first.port)).proc;
    },
    async stop() {
      proc?.kill("SIGKILL");
      await proc?.exited;
      proc = null;
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
    },
  };
  return server;
}
