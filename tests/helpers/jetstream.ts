/**
 * Real nats-servers (Debian's) with JetStream on loopback, for the nats store: one server, or a
 * 3-node cluster. Each asks for port -1 (the server picks a free one) and its ports are read from
 * its log; each has its own temporary store dir (-sd). A stopped node restarts on the same ports
 * and store dir, so clients and routes find it again.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));

export interface JsNode {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface JsServers extends AsyncDisposable {
  /** Every node's URL, comma-separated (what `[store] nats_url` takes). */
  url: string;
  nodes: JsNode[];
}

type Proc = Bun.Subprocess<"ignore", "ignore", "pipe">;

/** Starts a nats-server; resolves once its log says it is ready (and, clustered, listening for routes). */
async function spawn(
  args: string[],
  clustered: boolean,
): Promise<{ proc: Proc; port: number; routePort: number | null }> {
  if (!BIN)
    throw new Error(
      "nats-server not found: install Debian's nats-server (apt-get install nats-server), as .ci/run does",
    );
  const proc = Bun.spawn([BIN, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let log = "";
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`nats-server exited before it was ready (exit ${await proc.exited}):\n${log}`);
      log += decoder.decode(value, { stream: true });
      const client = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
      const route = /Listening for route connections on [^\s]*:(\d+)/.exec(log);
      if (client && /Server is ready/.test(log) && (!clustered || route)) {
        void (async () => {
          while (!(await reader.read().catch(() => ({ done: true }))).done);
        })();
        return { proc, port: Number(client[1]), routePort: route ? Number(route[1]) : null };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

function node(makeArgs: (port: number) => string[], first: { proc: Proc; port: number }): JsNode {
  let proc: Proc | null = first.proc;
  return {
    url: `nats://127.0.0.1:${first.port}`,
    port: first.port,
    async start() {
      if (proc) return;
      proc = (await spawn(makeArgs(first.port), false)).proc;
    },
    async stop() {
      proc?.kill("SIGKILL");
      await proc?.exited;
      proc = null;
    },
  };
}

/** One nats-server with JetStream. */
export async function startJetStream(): Promise<JsServers> {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-js-"));
  const args = (port: number) => ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir];
  const n = node(args, await spawn(args(-1), false));
  return {
    url: n.url,
    nodes: [n],
    async [Symbol.asyncDispose]() {
      await n.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A free loopback port, by binding one and letting it go (routes must be named before the nodes start). */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/**
 * A 3-node JetStream cluster. JetStream clustering needs every node's routes configured up front, so
 * the route ports are probed free first; a node that loses its port to another process in between
 * makes the whole start retry with new ports. Client ports are still the servers' own (-1).
 */
export async function startJetStreamCluster(): Promise<JsServers> {
  for (let attempt = 0; ; attempt++) {
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), "exoclaw-jsc-")));
    const routePorts = [freePort(), freePort(), freePort()];
    const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
    const args = (i: number, port: number) => [
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "-js",
      "-sd",
      dirs[i]!,
      "-n",
      `n${i + 1}`,
      "--cluster_name",
      "exo",
      "-cluster",
      `nats://127.0.0.1:${routePorts[i]}`,
      "-routes",
      routes,
    ];
    const nodes: JsNode[] = [];
    try {
      for (const i of [0, 1, 2]) nodes.push(node((p) => args(i, p), await spawn(args(i, -1), true)));
    } catch (e) {
      for (const n of nodes) await n.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      if (attempt < 3) continue;
      throw e;
    }
    return {
      url: nodes.map((n) => n.url).join(","),
      nodes,
      async [Symbol.asyncDispose]() {
        for (const n of nodes) await n.stop();
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      },
    };
  }
}

/** Polls `cond` until it holds (a condition, not a sleep standing in for one). */
export async function waitFor(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(50);
  }
}
