/**
 * Fault injection (issue 15): NATS killed and restarted under the gateway's bus (`[bus] nats_url`),
 * against a real 3-node nats-server cluster on loopback (client and route ports picked by the
 * servers, -1). One node killed: the gateway keeps serving and its bus fails over to another node it
 * learned from the cluster; all three killed: it keeps serving on the in-process bus; all back: it
 * reconnects and announces on NATS again. A `nats_url` listing the cluster's servers connects while
 * its first one is down.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { StreamFn } from "../../src/agent/loop.ts";
import { createNatsBus } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { unpackMsgpack } from "../../src/protocol/codec.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";
import { eventually } from "../fuzz/_fuzz.ts";

const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));

interface Node {
  port: number;
  routePort: number;
  url: string;
  /** Route connections this node has made or taken since it (re)started. */
  routes: number;
  up: boolean;
}

/** One nats-server of the cluster; its log is read for its ports and for routes coming up. */
async function spawnNode(
  node: Partial<Node>,
  routes: string[],
): Promise<{ node: Node; proc: Bun.Subprocess<"ignore", "ignore", "pipe"> }> {
  const args = [
    "-a",
    "127.0.0.1",
    "-p",
    String(node.port ?? -1),
    "--cluster_name",
    "exo",
    "--cluster",
    `nats://127.0.0.1:${node.routePort ?? -1}`,
  ];
  if (routes.length > 0) args.push("--routes", routes.join(","));
  const proc = Bun.spawn([BIN!, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const n = node as Node;
  n.routes = 0;
  n.up = true;
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let log = "";
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      const text = decoder.decode(value, { stream: true });
      log += text;
      n.routes += (text.match(/Route connection created/g) ?? []).length;
      const client = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
      const route = /Listening for route connections on [^\s]*:(\d+)/.exec(log);
      if (client && route) {
        n.port = Number(client[1]);
        n.routePort = Number(route[1]);
        n.url = `nats://127.0.0.1:${n.port}`;
        ready();
      }
    }
  })();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await Promise.race([isReady, proc.exited.then(() => Promise.reject(new Error(`nats-server exited:\n${log}`)))]);
  clearTimeout(timer);
  return { node: n, proc };
}

async function startCluster() {
  const procs: (Bun.Subprocess | null)[] = [];
  const first = await spawnNode({}, []);
  procs.push(first.proc);
  const seed = `nats://127.0.0.1:${first.node.routePort}`;
  const nodes = [first.node];
  for (let i = 0; i < 2; i++) {
    const s = await spawnNode({}, [seed]);
    nodes.push(s.node);
    procs.push(s.proc);
  }
  const cluster = {
    nodes,
    /** Every node routed to both others. */
    formed: () => eventually(() => nodes.every((n) => n.routes >= 2), 15_000),
    async kill(i: number) {
      procs[i]?.kill("SIGKILL");
      await procs[i]?.exited;
      procs[i] = null;
      nodes[i]!.up = false;
    },
    async restart(i: number) {
      const others = nodes.filter((_, j) => j !== i).map((n) => `nats://127.0.0.1:${n.routePort}`);
      procs[i] = (await spawnNode(nodes[i]!, others)).proc;
    },
    async [Symbol.asyncDispose]() {
      for (let i = 0; i < procs.length; i++) await cluster.kill(i);
    },
  };
  return cluster;
}

const stream: StreamFn = async function* (req) {
  yield { type: "text", text: `ok: ${(req.messages.at(-1)!.parts[0] as { text: string }).text}` };
  yield { type: "done", stop_reason: "end_turn" };
};
type Msg = Record<string, any>;

/** The gateway still serves: ping, /health, and a channel message answered inline by the http channel. */
async function serves(gw: TestGateway, ws: TestSocket, id: string) {
  expect((await ws.call("ping")).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  const r = await fetch(`${gw.url}/webhook/http`, {
    method: "POST",
    body: JSON.stringify({ peer: "ada", text: id, id }),
  });
  expect(r.status).toBe(200);
  expect(JSON.stringify(await r.json())).toContain(`ok: ${id}`);
}
const busMode = async (ws: TestSocket) => ((await ws.call("status")) as Msg).result.bus.mode as string;

/** A listener on `url`: resolves once a message on `exoclaw.http.>` with this id arrives (after a flush so the server has the subscription). */
async function listen(url: string) {
  const bus = createNatsBus({ url, log: silentLogger, reconnectWaitMs: 100 });
  expect(await eventually(() => bus.mode === "nats", 10_000)).toBe(true);
  const sub = bus.subscribe("exoclaw.http.>");
  await bus.publish("exoclaw.http.probe", new TextEncoder().encode("ready?"));
  expect((await Promise.race([sub.next(), Bun.sleep(3000).then(() => null)]))?.value?.subject).toBe(
    "exoclaw.http.probe",
  );
  return {
    async heard(id: string) {
      for (;;) {
        const m = await Promise.race([sub.next(), Bun.sleep(5000).then(() => null)]);
        if (!m?.value) return false;
        if ((unpackMsgpack(m.value.data) as { id?: string }).id === id) return true;
      }
    },
    close: () => bus.close(),
  };
}

test.skipIf(!BIN)(
  `one node of three killed, then all, then all back: the gateway serves throughout and its bus reconnects${BIN ? "" : " (skipped: nats-server not installed)"}`,
  async () => {
    await using cluster = await startCluster();
    expect(await cluster.formed()).toBe(true);
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    await using gw = await startTestGateway({
      toml: `[bus]\nnats_url = "${a.url}"\n\n[channels.http]\n`,
      streamFor: () => stream,
    });
    await using ws = await openSocket(gw.wsUrl);
    expect(await eventually(async () => (await busMode(ws)) === "nats", 10_000)).toBe(true);
    const onC = await listen(c.url);
    try {
      await serves(gw, ws, "m1");
      expect(await onC.heard("m1")).toBe(true);

      // The node the gateway was given dies: it fails over to one it learned from the cluster.
      await cluster.kill(0);
      await serves(gw, ws, "m2");
      expect(await eventually(async () => (await busMode(ws)) === "nats", 15_000)).toBe(true);
      await serves(gw, ws, "m3");
      expect(await onC.heard("m3")).toBe(true);
    } finally {
      await onC.close();
    }

    // Every node dies: the in-process bus, and the gateway serves on.
    await cluster.kill(1);
    await cluster.kill(2);
    expect(await eventually(async () => (await busMode(ws)) === "local", 10_000)).toBe(true);
    await serves(gw, ws, "m4");

    // All back on their ports: the gateway reconnects and announces on NATS again.
    for (const i of [0, 1, 2]) await cluster.restart(i);
    expect(await cluster.formed()).toBe(true);
    expect(await eventually(async () => (await busMode(ws)) === "nats", 20_000)).toBe(true);
    const onB = await listen(b.url);
    try {
      await serves(gw, ws, "m5");
      expect(await onB.heard("m5")).toBe(true);
    } finally {
      await onB.close();
    }
  },
  90_000,
);

test.skipIf(!BIN)(
  `nats_url listing the cluster's servers: the gateway connects while the first one is down${BIN ? "" : " (skipped: nats-server not installed)"}`,
  async () => {
    await using cluster = await startCluster();
    expect(await cluster.formed()).toBe(true);
    await cluster.kill(0);
    const urls = cluster.nodes.map((n) => n.url).join(",");
    await using gw = await startTestGateway({
      toml: `[bus]\nnats_url = "${urls}"\n\n[channels.http]\n`,
      streamFor: () => stream,
    });
    await using ws = await openSocket(gw.wsUrl);
    expect(await eventually(async () => (await busMode(ws)) === "nats", 10_000)).toBe(true);
    await serves(gw, ws, "n1");
  },
  60_000,
);
