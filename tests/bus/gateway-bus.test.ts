/** A gateway with [bus] nats_url announces accepted channel messages on NATS (a real nats-server). */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { createNatsBus } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { unpackMsgpack } from "../../src/protocol/codec.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { openSocket } from "../helpers/ws.ts";

const stream: StreamFn = async function* () {
  yield { type: "text", text: "ok" };
  yield { type: "done", stop_reason: "end_turn" };
};

test("with [bus] nats_url, accepted channel messages are announced on exoclaw.<channel>.<account>.<peer> (MessagePack)", async () => {
  await using nats = await startNatsServer();
  await using gw = await startTestGateway({
    toml: `[bus]\nnats_url = "${nats.url}"\n\n[channels.http]\n`,
    streamFor: () => stream,
  });
  const listener = createNatsBus({ url: nats.url, log: silentLogger });
  try {
    await using ws = await openSocket(gw.wsUrl);
    for (
      let i = 0;
      i < 200 && (listener.mode !== "nats" || ((await ws.call("status")) as any).result.bus.mode !== "nats");
      i++
    )
      await Bun.sleep(25);
    expect(((await ws.call("status")) as any).result.bus).toEqual({ mode: "nats", url: nats.url });
    const sub = listener.subscribe("exoclaw.http.>");
    // A round trip through the server on the listener's connection (a flush): once its probe comes
    // back, the server has the subscription, so the gateway's announcement reaches it.
    await listener.publish("exoclaw.http.probe", new TextEncoder().encode("ready?"));
    expect((await Promise.race([sub.next(), Bun.sleep(3000).then(() => null)]))?.value?.subject).toBe(
      "exoclaw.http.probe",
    );
    const r = await fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      body: JSON.stringify({ peer: "ada.l", text: "hi", id: "n1" }),
    });
    expect(r.status).toBe(200);
    const m = await Promise.race([sub.next(), Bun.sleep(3000).then(() => null)]);
    expect(m?.value?.subject).toBe("exoclaw.http.default.ada%2El");
    expect(unpackMsgpack(m!.value!.data)).toEqual({
      channel: "http",
      id: "n1",
      account: "default",
      peer: "ada.l",
      text: "hi",
    });
  } finally {
    await listener.close();
  }
});
