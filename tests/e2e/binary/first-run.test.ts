/**
 * The compiled gateway started the way a new user starts it before onboarding — no config, no API
 * key, a state directory made by hand (mode 755) — with EXOCLAW_LOG=warn: it says what is missing
 * and how to fix it, tightens the state directory, and explains the 403 a reverse proxy meets.
 * One gateway for the whole file; no message is sent (the agent's endpoint is the real provider's).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  type BinaryGateway,
  binaryHome,
  freePort,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";

const NO_KEY =
  "agent main has no API key for anthropic: every message to it will fail until you run `exoclaw onboard` or `exoclaw secret set anthropic`";

describe.if(NATIVE !== undefined)(
  "the binary's first start: no config, no key, a loose state dir, EXOCLAW_LOG=warn",
  () => {
    const home = binaryHome();
    let gw: BinaryGateway;

    beforeAll(async () => {
      await nativeBinary();
      chmodSync(home.path, 0o755); // mkdir by hand under umask 022
      // At warn the "gateway listening" line is hidden: the helper waits for /health on a known port.
      gw = await startBinaryGateway(home, { port: await freePort(), quiet: true, env: { EXOCLAW_LOG: "warn" } });
    }, 120_000);

    afterAll(async () => {
      await gw?.stop();
      home[Symbol.dispose]();
    });

    test("the log warns that the agent has no API key and names `exoclaw onboard`; EXOCLAW_LOG=warn leaves out every info line", async () => {
      const line = await gw.waitForLog((l) => l.msg === NO_KEY);
      expect(line).toMatchObject({ level: "warn", agent: "main", provider: "anthropic" });
      expect(gw.logs.filter((l) => l.level !== "warn" && l.level !== "error")).toEqual([]);
      expect(gw.logs.some((l) => l.msg === "gateway listening")).toBe(false);
    });

    test("exoclaw status shows the default agent's key missing, with the fix", async () => {
      const r = await runBinary(home, ["status", "--port", String(gw.port)]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(
        "agents       main (default): anthropic claude-sonnet-4-5 — no API key: run `exoclaw onboard` or `exoclaw secret set anthropic`\n",
      );
      // The inbound queue of the channels, in the human view too.
      expect(r.stdout).toContain("channels     0 message(s) pending, 0 dead-lettered\n");
      const json = JSON.parse((await runBinary(home, ["status", "--json", "--port", String(gw.port)])).stdout) as {
        agents: unknown[];
        inbound: unknown;
      };
      expect(json.agents).toEqual([
        { id: "main", provider: "anthropic", model: "claude-sonnet-4-5", default: true, key: "missing" },
      ]);
      expect(json.inbound).toEqual({ pending: 0, dead: 0 });
    });

    test("a state directory others could enter is tightened to 700 and says so; the new database is mode 600", async () => {
      expect(statSync(home.path).mode & 0o777).toBe(0o700);
      const tightened = await gw.waitForLog(
        (l) => l.msg === "state file was readable by others; permissions tightened",
      );
      expect(tightened).toMatchObject({ level: "warn", path: home.path, was: "755", now: "700" });
      for (const f of ["exoclaw.db", "exoclaw.db-wal", "exoclaw.db-shm"]) {
        const p = join(home.path, f);
        if (f === "exoclaw.db" || existsSync(p))
          expect({ f, mode: (statSync(p).mode & 0o777).toString(8) }).toEqual({ f, mode: "600" });
      }
    });

    test("a request for the Host a reverse proxy forwards is refused 403 with the reason and both ways out; /health still answers", async () => {
      const res = await fetch(`${gw.url}/ready`, { headers: { host: "bot.example.com" } });
      expect(res.status).toBe(403);
      const { error } = (await res.json()) as { error: { message: string } };
      expect(error.message).toContain(
        "host bot.example.com not allowed: a gateway without a token answers only loopback host names",
      );
      expect(error.message).toContain("set [gateway] public_url to the address the proxy serves");
      expect(error.message).toContain("start it with a token (--token or EXOCLAW_TOKEN)");
      // The operator reading the journal sees it too (at warn).
      expect(await gw.waitForLog((l) => String(l.msg).startsWith("request for a foreign Host refused"))).toMatchObject({
        host: "bot.example.com",
        path: "/ready",
      });
      expect((await fetch(`${gw.url}/health`, { headers: { host: "bot.example.com" } })).status).toBe(200);
      expect(gw.stderr()).toBe("");
    });
  },
);
