/**
 * Approvals with several gateways on one NATS store (issue 14): a gateway starting (or restarting)
 * next to another must not expire the requests the other's turns are waiting on — only what nobody
 * can answer any more (its own last run's: tests/store/nats.test.ts). Two real gateways on a real nats-server, a real .wasm
 * tool (builtin http-get against a loopback web site), real WebSocket clients, a scripted model.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { startJetStream, type JsServers } from "../helpers/jetstream.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
let js: JsServers;
let web: ReturnType<typeof Bun.serve>;
const hits: string[] = [];
beforeAll(async () => {
  js = await startJetStream();
  web = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      hits.push(new URL(req.url).pathname);
      return new Response("the page");
    },
  });
});
afterAll(async () => {
  await web?.stop(true);
  await js?.[Symbol.asyncDispose]();
});

/** Calls http_get on `url` once, then answers with what it read. */
const model = (url: string): StreamFn =>
  async function* (req) {
    if (req.messages.at(-1)!.role === "user") {
      yield { type: "tool_call", id: "tu0", name: "http_get", input: { url } };
      yield { type: "done", stop_reason: "tool_use" };
      return;
    }
    yield { type: "text", text: `read: ${(req.messages.at(-1)!.parts[0] as { content?: string }).content}` };
    yield { type: "done", stop_reason: "end_turn" };
  };

const toml = () =>
  `[approvals]\ntimeout_ms = 60000\n` +
  `[[plugins]]\nname = "web"\npath = "builtin:http-get"\nallowed_hosts = ["127.0.0.1:${web.port}"]\napproval = "always"\n\n` +
  `[store]\nkind = "nats"\nnats_url = "${js.url}"\nnamespace = "appr"\n`;

async function loaded(gw: TestGateway): Promise<void> {
  const end = Date.now() + 15_000;
  while (!gw.plugins.list().some((p) => p.state === "loaded") && Date.now() < end) await Bun.sleep(20);
}

const approvalOf = async (ws: TestSocket, id: string) =>
  (
    (
      await ws.next(
        (r) =>
          (r.value as Msg).method === "chat.event" &&
          (r.value as Msg).params.id === id &&
          (r.value as Msg).params.event === "approval",
        10_000,
      )
    ).value as Msg
  ).params.data.id as string;

test("a gateway starting next to another leaves the other's waiting approval pending, and that turn still gets its answer", async () => {
  const url = `http://127.0.0.1:${web.port}/page`;
  const homeA = tempDir("exoclaw-appr-a-");
  homeA.file("config.toml", toml());
  const homeB = tempDir("exoclaw-appr-b-");
  homeB.file("config.toml", toml());
  await using a = await startTestGateway({ home: homeA.path, streamFor: () => model(url) });
  await loaded(a);
  await using ws = await openSocket(a.wsUrl);
  const turn = ws.call("chat.send", { content: "fetch it", peer: "p1" }, "t1");
  const waiting = await approvalOf(ws, "t1");
  // B starts on the same store while A's turn waits.
  {
    await using b = await startTestGateway({ home: homeB.path, streamFor: () => model(url) });
    await using wb = await openSocket(b.wsUrl);
    const listed = ((await wb.call("approval.list", { state: "pending" })) as Msg).result.approvals as Msg[];
    expect(listed.map((r) => [r.id, r.state])).toEqual([[waiting, "pending"]]);
    // B's own request, left waiting when B stops without answering it.
    await loaded(b);
    void wb.call("chat.send", { content: "fetch it", peer: "p2" }, "t2").catch(() => {});
    await approvalOf(wb, "t2");
  }
  // A's operator answers: its turn runs the tool and answers.
  await using op = await openSocket(a.wsUrl);
  expect(((await op.call("approval.resolve", { id: waiting, allow: true })) as Msg).result.state).toBe("allowed");
  expect(((await turn) as Msg).result.text).toBe("read: HTTP 200\nthe page");
  expect(hits).toEqual(["/page"]);
  // Nothing is left pending in the store: B's stop denied its own waiting request (its turn cut short).
  expect(((await op.call("approval.list", { state: "pending" })) as Msg).result.approvals).toEqual([]);
  const denied = ((await op.call("approval.list", { state: "denied" })) as Msg).result.approvals as Msg[];
  expect(denied.map((r) => r.session)).toEqual(["main:ws:local:p2"]);
  homeA[Symbol.dispose]();
  homeB[Symbol.dispose]();
});
