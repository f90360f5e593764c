/** A real nats-server (Debian's) on a free loopback port, stoppable and restartable on that port. */
import { existsSync } from "node:fs";

const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

async function listening(port: number): Promise<boolean> {
  try {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
    return true;
  } catch {
    return false;
  }
}

export interface NatsServer extends AsyncDisposable {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(): Promise<NatsServer> {
  if (!BIN) throw new Error("nats-server not found: install Debian's nats-server (apt-get install nats-server), as .ci/run does");
  const port = freePort();
  let proc: Bun.Subprocess | null = null;
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      proc = Bun.spawn([BIN, "-a", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "ignore" });
      for (let i = 0; i < 200 && !(await listening(port)); i++) await Bun.sleep(25);
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
  await server.start();
  return server;
}
