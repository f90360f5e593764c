/**
 * A swarm of WebSocket clients in one process, for bench/connections.ts and tests/workers: opens
 * `--count` sockets to the gateway's /ws from the loopback source address `--from` (127.0.0.2 and up,
 * so many processes together stay clear of the ephemeral port range one address pair has), each
 * authenticated with `--token` (Bearer on the upgrade) and answering one JSON-RPC `ping` with `pong`.
 *
 * node:net sockets (they take a local address; WebSocket does not) with a minimal RFC 6455 client:
 * the upgrade, masked text frames out, unmasked frames in, pings answered with pongs. Talks to its parent in JSON lines:
 * stdout `{"t":"open", open, failed, ms, errors}` once every socket is open and pinged (or failed);
 * then on stdin `sample N` pings N sockets spread over the swarm, one at a time, and answers
 * `{"t":"sample", ms: [...], closed}` (closed: sockets that closed since they opened); `close` closes every socket and answers `{"t":"closed"}`, then exits.
 */
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    count: { type: "string" },
    from: { type: "string", default: "127.0.0.2" },
    token: { type: "string", default: "" },
    concurrency: { type: "string", default: "256" },
    host: { type: "string", default: "127.0.0.1" },
  },
  strict: true,
});
const port = Number(values.port);
const count = Number(values.count);
const concurrency = Number(values.concurrency);

interface Client {
  sock: net.Socket;
  buf: Buffer;
  upgraded: boolean;
  /** Resolves the ping in flight with its round trip, or null. */
  waiting: ((ok: boolean) => void) | null;
  nextId: number;
  /** Set when the socket closed after it was open: a ping on it fails at once. */
  closed: boolean;
}

const clients: Client[] = [];
const errors = new Map<string, number>();
const say = (v: unknown) => process.stdout.write(JSON.stringify(v) + "\n");

/** One masked frame (client frames must be masked): text (opcode 1) unless told, e.g. pong (0xa). */
function frame(text: string | Buffer, opcode = 0x1): Buffer {
  const payload = typeof text === "string" ? Buffer.from(text) : text;
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x80 | opcode, 0x80 | len])
      : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const out = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, out]);
}

/** Reads whole server frames off `c.buf`; a text frame answering the ping in flight settles it. */
function readFrames(c: Client): void {
  for (;;) {
    if (c.buf.length < 2) return;
    let len = c.buf[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (c.buf.length < 4) return;
      len = c.buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (c.buf.length < 10) return;
      len = Number(c.buf.readBigUInt64BE(2));
      off = 10;
    }
    if (c.buf.length < off + len) return;
    const opcode = c.buf[0]! & 0x0f;
    const text = opcode === 1 ? c.buf.subarray(off, off + len).toString() : "";
    // A ping is answered with a pong carrying its payload (RFC 6455 5.5.2), as every real client
    // does: the gateway closes a socket that stays silent past its idle timeout (Bun's 120 s), and a
    // 100,000-socket run keeps its first sockets open longer than that.
    if (opcode === 0x9) c.sock.write(frame(Buffer.from(c.buf.subarray(off, off + len)), 0xa));
    c.buf = c.buf.subarray(off + len);
    if (text.includes('"pong"') && c.waiting) {
      const w = c.waiting;
      c.waiting = null;
      w(true);
    }
  }
}

function ping(c: Client): Promise<boolean> {
  if (c.closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      c.waiting = null;
      resolve(false);
    }, 30_000);
    c.waiting = (ok) => {
      clearTimeout(timer);
      resolve(ok);
    };
    c.sock.write(frame(`{"jsonrpc":"2.0","id":${c.nextId++},"method":"ping"}`));
  });
}

function open(): Promise<Client | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: values.host, port, localAddress: values.from });
    const c: Client = { sock, buf: Buffer.alloc(0), upgraded: false, waiting: null, nextId: 1, closed: false };
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      errors.set(why, (errors.get(why) ?? 0) + 1);
      sock.destroy();
      resolve(null);
    };
    sock.setNoDelay(true);
    sock.on("connect", () => {
      const auth = values.token ? `Authorization: Bearer ${values.token}\r\n` : "";
      sock.write(
        `GET /ws HTTP/1.1\r\nHost: ${values.host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${auth}\r\n`,
      );
    });
    sock.on("data", (d: Buffer) => {
      c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
      if (!c.upgraded) {
        const end = c.buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = c.buf.subarray(0, end).toString();
        if (!head.startsWith("HTTP/1.1 101")) return fail(head.split("\r\n")[0] ?? "bad upgrade");
        c.upgraded = true;
        c.buf = c.buf.subarray(end + 4);
        void ping(c).then((ok) => {
          if (!ok) return fail("no pong");
          settled = true;
          resolve(c);
        });
      }
      readFrames(c);
    });
    sock.on("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    sock.on("close", () => {
      c.closed = true;
      c.waiting?.(false);
      fail("closed");
    });
  });
}

const t0 = performance.now();
let failed = 0;
let started = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (started < count) {
      started++;
      const c = await open();
      if (c) clients.push(c);
      else failed++;
    }
  }),
);
say({
  t: "open",
  open: clients.length,
  failed,
  ms: Math.round(performance.now() - t0),
  errors: Object.fromEntries(errors),
});

let input = "";
for await (const chunk of process.stdin) {
  input += Buffer.from(chunk).toString();
  let nl: number;
  while ((nl = input.indexOf("\n")) !== -1) {
    const line = input.slice(0, nl).trim();
    input = input.slice(nl + 1);
    if (line.startsWith("sample")) {
      const n = Math.min(Number(line.split(" ")[1] ?? 100), clients.length);
      const ms: number[] = [];
      const step = clients.length / Math.max(1, n);
      for (let i = 0; i < n; i++) {
        const c = clients[Math.floor(i * step)]!;
        const t = performance.now();
        ms.push((await ping(c)) ? performance.now() - t : -1);
      }
      say({ t: "sample", ms, closed: clients.filter((c) => c.closed).length });
    } else if (line === "close") {
      for (const c of clients) c.sock.destroy();
      say({ t: "closed" });
      process.exit(0);
    }
  }
}
for (const c of clients) c.sock.destroy();
process.exit(0);
