/**
 * The shared "through the gateway, else the store" scaffolding of `inbox`, `pairing` and `sessions`
 * (src/cli/_backend.ts): which side each command ends up on, and what it says when there is none,
 * run as a user would (the real CLI process).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openBackend } from "../../src/cli/_backend.ts";
import { loadConfig } from "../../src/config/index.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

const NOBODY = ["--port", "1"]; // nothing listens on port 1

describe("no gateway answering", () => {
  test("before any gateway made the database: empty lists, and a not-found naming the state directory", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    expect(await runExoclaw(["inbox", "list", ...NOBODY], env)).toMatchObject({
      code: 0,
      stdout: "the inbox is empty: every channel message was answered\n",
    });
    expect(await runExoclaw(["pairing", "list", ...NOBODY], env)).toMatchObject({
      code: 0,
      stdout: "no pairing requests and nobody approved yet\n",
    });
    expect(await runExoclaw(["sessions", "list", ...NOBODY], env)).toMatchObject({ code: 0, stdout: "no sessions\n" });
    expect(await runExoclaw(["inbox", "drop", "telegram:1", ...NOBODY], env)).toEqual({
      code: 1,
      stdout: "",
      stderr: `exoclaw: no messages: no gateway has run with this state directory yet (${home.path})\n`,
    });
    expect((await runExoclaw(["pairing", "approve", "ABCD2345", ...NOBODY], env)).stderr).toBe(
      `exoclaw: no pending pairing code: no gateway has run with this state directory yet (${home.path})\n`,
    );
  });

  test("a memory store: inbox and pairing say only a running gateway has them; sessions are simply none", async () => {
    using home = tempDir();
    home.file("config.toml", '[store]\nkind = "memory"\n');
    const env = { EXOCLAW_HOME: home.path };
    for (const [cmd, what] of [
      ["inbox", "messages"],
      ["pairing", "pairings"],
    ] as const) {
      const r = await runExoclaw([cmd, "list", ...NOBODY], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `exoclaw: no gateway is answering at ws://127.0.0.1:1/ws, and with store.kind = "memory" ${what} live only in a running gateway: start \`exoclaw gateway\` first\n`,
      );
    }
    expect(await runExoclaw(["sessions", "list", ...NOBODY], env)).toMatchObject({ code: 0, stdout: "no sessions\n" });
  });

  test("with a database: the store's side, closed after use", async () => {
    using home = tempDir();
    const store = openSqliteStore(join(home.path, "exoclaw.db"));
    await store.acceptInbound({
      id: "telegram:7",
      channel: "telegram",
      payload: JSON.stringify({ id: "7", account: "bot", peer: "42", text: "hi" }),
      received_at: 1,
    });
    await store.close();
    const config = loadConfig({ EXOCLAW_HOME: home.path }, {});
    let opened = "";
    const b = await openBackend(
      config,
      { port: "1" },
      {
        gateway: () => (opened = "gateway"),
        empty: () => (opened = "empty"),
        store: (s) => (opened = `store ${s.location}`),
      },
    );
    expect(opened).toBe(`store ${join(home.path, "exoclaw.db")}`);
    await b.close();
  });
});

describe("a gateway answering", () => {
  test("its side is used; a gateway that refuses the token is an error, never a quiet fall back to the store", async () => {
    await using gw = await startTestGateway({ token: "backend-token-0123456789" });
    const config = loadConfig({ EXOCLAW_HOME: gw.home }, { port: gw.port, token: "backend-token-0123456789" });
    let url = "";
    const b = await openBackend(config, {}, { gateway: (_c, u) => (url = u), empty: () => "", store: () => "" });
    expect(url).toBe(`ws://127.0.0.1:${gw.port}/ws`);
    await b.close();
    const refused = await openBackend(
      loadConfig({ EXOCLAW_HOME: gw.home }, { port: gw.port, token: "wrong" }),
      {},
      { gateway: () => "", empty: () => "", store: () => "" },
    ).catch((e: Error) => e);
    expect(refused).toMatchObject({
      code: "unauthorized",
      message: `the gateway at ws://127.0.0.1:${gw.port}/ws refused the token`,
    });
    const r = await runExoclaw(["pairing", "list", "--port", String(gw.port), "--token", "wrong"], {
      EXOCLAW_HOME: gw.home,
    });
    expect([r.code, r.stderr]).toEqual([1, `exoclaw: the gateway at ws://127.0.0.1:${gw.port}/ws refused the token\n`]);
  });
});
