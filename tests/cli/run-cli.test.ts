/** The CLI in-process (the spawned tests in cli.test.ts prove the real process; these cover the logic). */
import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import pkg from "../../package.json";
import { runCli } from "../../src/cli/_run.ts";
import { root } from "../../src/cli/index.ts";
import { gatewayUrl } from "../../src/cli/_client.ts";
import { formatStatus } from "../../src/cli/status.ts";
import { loadConfig } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

let out: string[];
let err: string[];
let stdoutSpy: ReturnType<typeof spyOn>;
const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), debug: false };
const saved = { home: process.env.EXOCLAW_HOME, token: process.env.EXOCLAW_TOKEN, config: process.env.EXOCLAW_CONFIG };

beforeEach(() => {
  out = [];
  err = [];
  stdoutSpy = spyOn(process.stdout, "write").mockImplementation(
    ((chunk: string) => (out.push(String(chunk)), true)) as never,
  );
  delete process.env.EXOCLAW_TOKEN;
  delete process.env.EXOCLAW_CONFIG;
});
afterEach(() => {
  stdoutSpy.mockRestore();
  for (const [k, v] of [
    ["EXOCLAW_HOME", saved.home],
    ["EXOCLAW_TOKEN", saved.token],
    ["EXOCLAW_CONFIG", saved.config],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("runCli", () => {
  test("version, help and usage", async () => {
    expect(await runCli(root, ["--version"], io)).toBe(0);
    expect(out).toEqual([pkg.version]);
    expect(await runCli(root, [], io)).toBe(0);
    expect(await runCli(root, ["config", "check", "--help"], io)).toBe(0);
    expect(out.join("\n")).toContain("--json");
    expect(await runCli(root, ["nope"], io)).toBe(2);
    expect(err).toEqual(["exoclaw: Unknown command nope (see exoclaw --help)"]);
  });

  test("status against a live gateway and with a token", async () => {
    using home = tempDir();
    process.env.EXOCLAW_HOME = home.path;
    await using gw = await startTestGateway({ token: "cli-token-1234" });
    expect(await runCli(root, ["status", "--port", String(gw.port), "--token", "cli-token-1234", "--json"], io)).toBe(
      0,
    );
    expect(JSON.parse(out.join(""))).toMatchObject({ port: gw.port, auth: { token_required: true } });
    out = [];
    expect(await runCli(root, ["status", "--port", String(gw.port)], io)).toBe(1);
    expect(err.at(-1)).toBe(
      `exoclaw: the gateway at ws://127.0.0.1:${gw.port}/ws requires a token: pass --token or set EXOCLAW_TOKEN`,
    );
    expect(await runCli(root, ["status", "--port", String(gw.port), "--token"], io)).toBe(2);
    expect(err.at(-1)).toBe("exoclaw: --token needs a value");
  });

  test("config check with defaults and with a bad explicit file", async () => {
    using home = tempDir();
    process.env.EXOCLAW_HOME = home.path;
    expect(await runCli(root, ["config", "check"], io)).toBe(0);
    expect(out.join("")).toContain("config ok: no config file, using defaults");
    expect(await runCli(root, ["config", "check", "--config", `${home.path}/missing.toml`], io)).toBe(1);
    expect(err.at(-1)).toBe(`exoclaw: ${home.path}/missing.toml: config file not found`);
  });

  test("unexpected errors are one line without a stack", async () => {
    const boom = {
      meta: { name: "boom" },
      run: () => {
        throw new TypeError("kaput");
      },
    };
    expect(await runCli({ subCommands: { boom } }, ["boom"], io)).toBe(1);
    expect(err).toEqual(["exoclaw: unexpected error: kaput"]);
  });
});

describe("gatewayUrl", () => {
  const cfg = (bind: string) => loadConfig({ EXOCLAW_HOME: "/nonexistent" }, { bind, token: "t" });
  test("reaches wildcard binds over loopback and brackets IPv6", () => {
    expect(gatewayUrl(cfg("0.0.0.0"), {})).toBe("ws://127.0.0.1:7200/ws");
    expect(gatewayUrl(cfg("::"), { port: 9 })).toBe("ws://[::1]:9/ws");
    expect(gatewayUrl(cfg("::1"), {})).toBe("ws://[::1]:7200/ws");
    expect(gatewayUrl(cfg("127.0.0.1"), { url: "ws://h:1/ws" })).toBe("ws://h:1/ws");
  });
});

describe("formatStatus", () => {
  test("renders uptime in the most readable unit", () => {
    const base = {
      version: "1",
      pid: 1,
      url: "",
      bind: "127.0.0.1",
      port: 1,
      auth: { token_required: true, tls: true },
      connections: 2,
      config_file: "/c.toml",
      memory: { rss_bytes: 1048576 * 30 },
    };
    const text = formatStatus({ ...base, uptime_s: 7300 }, "ws://x/ws");
    expect(text).toContain("up 2.0 h");
    expect(text).toContain("token required, TLS");
    expect(text).toContain("30.0 MiB RSS");
    expect(formatStatus({ ...base, uptime_s: 600 }, "u")).toContain("up 10 min");
    const full = formatStatus(
      {
        ...base,
        uptime_s: 1,
        store: { kind: "sqlite", location: "/s/exoclaw.db", sessions: 3 },
        router: { bindings: 2 },
        bus: { mode: "local", url: "nats://n:4222" },
        plugins: [
          { name: "echo", state: "loaded" },
          { name: "w", state: "error", error: "changed" },
        ],
      },
      "u",
    );
    expect(full).toContain("store        sqlite (/s/exoclaw.db), 3 session(s)");
    expect(full).toContain("bindings     2");
    expect(full).toContain("bus          local (nats://n:4222 unreachable)");
    expect(full).toContain("plugins      echo (loaded), w (error)\n               w: changed");
  });

  test("with --workers: every worker on its own line under the total", () => {
    const base = {
      version: "1",
      pid: 11,
      uptime_s: 5,
      url: "",
      bind: "127.0.0.1",
      port: 1,
      auth: { token_required: true, tls: false },
      connections: 2,
      config_file: null,
      memory: { rss_bytes: 1048576 },
    };
    const w = (index: number, pid: number, connections: number, children = 0) => ({
      index,
      pid,
      uptime_s: 5,
      connections,
      rss_bytes: 1048576 * 70,
      children,
      children_rss_bytes: children * 1048576 * 40,
      turns_running: 1,
    });
    const text = formatStatus(
      {
        ...base,
        workers: {
          expected: 2,
          running: 2,
          this_worker: 0,
          list: [w(0, 11, 13_000, 2), w(1, 12, 12_999)],
          total: { connections: 25_999, rss_bytes: 1048576 * 220, children: 2, turns_running: 2 },
        },
      },
      "u",
    );
    expect(text).toContain(
      "workers      2 of 2 running (this answer from #0), 25999 connection(s), 2 turn(s) running, 220.0 MiB RSS in all",
    );
    expect(text).toContain(
      "               #0 pid 11, up 5 s, 13000 conn, 70.0 MiB + 2 plugin/child process(es) 80.0 MiB",
    );
    expect(text).toContain("               #1 pid 12, up 5 s, 12999 conn, 70.0 MiB");
    expect(formatStatus(base, "u")).not.toContain("workers");
  });
});
