/**
 * The operator's setup commands through the compiled binary, on one state directory as a user
 * builds it up: an unknown onboard flag refused; `onboard` re-run on a grown config merges (keeps
 * channels, plugins, bindings), saves a backup and honours --base-url after one key check against a
 * loopback stand-in; `doctor` passes the result and names what breaks it; `secret set` at a real
 * terminal hides the value; `service install` prints a hardened system unit and refuses to write
 * one without root. No gateway runs in this file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binaryHome, freePort, NATIVE, nativeBinary, runBinary } from "../../helpers/binary.ts";

const KEY = "sk-local-binary-setup-0123";

interface Check {
  id: string;
  status: "ok" | "warn" | "fail";
  message: string;
  fix?: string;
}

describe.if(NATIVE !== undefined)("setup through the binary: onboard, doctor, secret set, service install", () => {
  const home = binaryHome();
  // An OpenAI-compatible server's model list: what onboard's key check asks, with the key.
  const seen: { method: string; path: string; auth: string | null }[] = [];
  const models = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push({ method: req.method, path: new URL(req.url).pathname, auth: req.headers.get("authorization") });
      if (req.headers.get("authorization") !== `Bearer ${KEY}`)
        return Response.json(
          { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } },
          { status: 401 },
        );
      return Response.json({
        object: "list",
        data: [{ id: "local-model", object: "model", created: 1, owned_by: "me" }],
      });
    },
  });
  const base = `http://127.0.0.1:${models.port}/v1`;
  let port: number;
  const doctor = async () => {
    const r = await runBinary(home, ["doctor", "--json"]);
    expect(r.stderr).toBe("");
    return { code: r.code, ...(JSON.parse(r.stdout) as { checks: Check[]; ok: boolean }) };
  };

  beforeAll(async () => {
    await nativeBinary();
    port = await freePort(); // doctor asks the configured port whether a gateway answers: nothing must
  }, 120_000);

  afterAll(async () => {
    await models.stop(true);
    home[Symbol.dispose]();
  });

  test("onboard --bogus is a usage error (exit 2, one line) and writes nothing", async () => {
    expect(await runBinary(home, ["onboard", "--bogus"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "exoclaw: unknown option --bogus for `exoclaw onboard`\n",
    });
    expect((await runBinary(home, ["onboard", "--provider", "openai", "--bsae-url", base, "--yes"])).stderr).toBe(
      "exoclaw: unknown option --bsae-url for `exoclaw onboard`\n",
    );
    expect(existsSync(join(home.path, "config.toml"))).toBe(false);
  });

  test("onboard on a grown config: the main agent is updated after a key check, everything else kept, the old file saved", async () => {
    const original =
      `# my setup\n[gateway]\nport = ${port}\n\n[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nsystem_prompt = "Be brief."\n\n` +
      `[[agents]]\nid = "helper"\nprovider = "anthropic"\nmodel = "claude-haiku-4-5"\n\n` +
      `[[bindings]]\nagent = "helper"\nchannel = "telegram"\n\n[[plugins]]\nname = "echo"\npath = "builtin:echo"\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\n`;
    home.file("config.toml", original);
    // The channel's credentials exist (config check refuses a channel whose secrets are missing).
    for (const name of ["telegram_webhook_secret", "telegram_bot_token"])
      expect((await runBinary(home, ["secret", "set", name], { stdin: `${name}-value\n` })).code).toBe(0);
    const r = await runBinary(
      home,
      ["onboard", "--provider", "openai", "--model", "local-model", "--base-url", base, "--api-key-stdin", "--yes"],
      { stdin: `${KEY}\n` },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`agent "main": openai local-model at ${base}`);
    expect(seen).toEqual([{ method: "GET", path: "/v1/models", auth: `Bearer ${KEY}` }]);
    const backup = /saved as (\S+)/.exec(r.stdout)?.[1];
    expect(backup).toBeDefined();
    expect(readFileSync(backup!, "utf8")).toBe(original);

    const check = await runBinary(home, ["config", "check", "--json"]);
    expect(check.code).toBe(0);
    const config = JSON.parse(check.stdout) as {
      gateway: { port: number };
      agents: { id: string; provider: string; model: string; base_url: string; system_prompt: string }[];
      bindings: unknown[];
      plugins: { name: string }[];
      channels: Record<string, unknown>;
    };
    expect(config.gateway.port).toBe(port);
    expect(config.agents.map((a) => [a.id, a.provider, a.model, a.base_url, a.system_prompt])).toEqual([
      ["main", "openai", "local-model", base, "Be brief."],
      ["helper", "anthropic", "claude-haiku-4-5", "", ""],
    ]);
    expect(config.bindings).toEqual([expect.objectContaining({ agent: "helper", channel: "telegram" })]);
    expect(config.plugins.map((p) => p.name)).toEqual(["echo"]);
    expect(Object.keys(config.channels)).toEqual(["telegram"]);
    expect(readFileSync(join(home.path, "credentials/agent-main.key"), "utf8")).toBe(`${KEY}\n`);
  });

  test("a key the server refuses fails onboard with one line and leaves the config as it was", async () => {
    const before = readFileSync(join(home.path, "config.toml"), "utf8");
    const r = await runBinary(
      home,
      ["onboard", "--provider", "openai", "--model", "local-model", "--base-url", base, "--api-key-stdin", "--yes"],
      { stdin: "sk-revoked\n" },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("401");
    expect(r.stderr).not.toContain("    at ");
    expect(readFileSync(join(home.path, "config.toml"), "utf8")).toBe(before);
    expect(readFileSync(join(home.path, "credentials/agent-main.key"), "utf8")).toBe(`${KEY}\n`);
  });

  test("secret set at a terminal prompts, hides what is typed, and stores it mode 600", async () => {
    const bin = await nativeBinary();
    const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stdout: "pipe", stderr: "pipe" });
    const screen = () => tmux("capture-pane", "-t", session, "-p").stdout.toString();
    const session = `exoclaw-bin-secret-${process.pid}`;
    const env = Object.entries(home.env())
      .map(([k, v]) => `${k}='${v}'`)
      .join(" ");
    const cmd = `cd '${home.cwd}' && env -i ${env} '${bin}' secret set telegram_bot_token; echo "exit=$?"; sleep 30`;
    expect(tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "20", cmd).exitCode).toBe(0);
    try {
      const deadline = Date.now() + 10_000;
      const wait = async (what: string, cond: () => boolean) => {
        while (!cond()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${screen()}`);
          await Bun.sleep(20);
        }
      };
      await wait("the prompt", () => screen().includes("Value for telegram_bot_token (input hidden)"));
      tmux("send-keys", "-t", session, "-l", "987654:AAE-typed-at-the-tty");
      tmux("send-keys", "-t", session, "Enter");
      await wait("the command to finish", () => screen().includes("exit="));
      expect(screen()).toContain("exit=0");
      expect(screen()).toContain("stored telegram_bot_token in");
      expect(screen()).not.toContain("AAE-typed-at-the-tty");
    } finally {
      tmux("kill-session", "-t", session);
    }
    const file = join(home.path, "credentials/telegram_bot_token.key");
    expect(readFileSync(file, "utf8").trim()).toBe("987654:AAE-typed-at-the-tty");
    expect(Bun.spawnSync(["stat", "-c", "%a", file]).stdout.toString().trim()).toBe("600");
  });

  test("doctor: the onboarded setup with its keys and channel secrets passes (exit 0); a blank secret and a missing key each fail, named with the fix", async () => {
    for (const [name, value] of [
      ["telegram_webhook_secret", "whsec-binary-1"],
      ["anthropic", "sk-ant-binary-setup-1"],
    ] as const)
      expect((await runBinary(home, ["secret", "set", name], { stdin: value })).code).toBe(0);
    const healthy = await doctor();
    expect(healthy.checks.filter((c) => c.status === "fail")).toEqual([]);
    expect({ code: healthy.code, ok: healthy.ok }).toEqual({ code: 0, ok: true });
    expect(healthy.checks).toContainEqual(
      expect.objectContaining({ id: "keys", status: "ok", message: expect.stringContaining("(used by agent main)") }),
    );
    expect(healthy.checks).toContainEqual({
      id: "keys",
      status: "ok",
      message: "anthropic: key from credentials/anthropic.key (used by agent helper)",
    });
    expect(healthy.checks).toContainEqual(
      expect.objectContaining({
        id: "channels",
        status: "ok",
        message: expect.stringContaining("telegram: plugin telegram, secrets webhook_secret, bot_token present"),
      }),
    );
    // The human report of the same: a line per check, exit 0.
    const human = await runBinary(home, ["doctor"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok {4}config {5}.*config\.toml is valid$/m);
    expect(human.stdout).not.toMatch(/^fail/m);

    const botToken = join(home.path, "credentials/telegram_bot_token.key");
    writeFileSync(botToken, " \n", { mode: 0o600 });
    const blank = await doctor();
    expect({ code: blank.code, ok: blank.ok }).toEqual({ code: 1, ok: false });
    expect(blank.checks).toContainEqual({
      id: "channels",
      status: "fail",
      message: "telegram: secret bot_token → credential telegram_bot_token is blank",
      fix: "exoclaw secret set telegram_bot_token",
    });
    writeFileSync(botToken, "987654:AAE-typed-at-the-tty\n", { mode: 0o600 });

    rmSync(join(home.path, "credentials/anthropic.key"));
    const keyless = await runBinary(home, ["doctor"]);
    expect(keyless.code).toBe(1);
    expect(keyless.stdout).toContain(
      "fail  keys       anthropic: no API key (used by agent helper)\n      fix: exoclaw secret set anthropic (or set ANTHROPIC_API_KEY), or exoclaw onboard\n",
    );
    expect(keyless.stdout).toMatch(/^1 failed, \d+ warning\(s\)$/m);
  });

  test("service install --print: the system unit runs /usr/local/bin/exoclaw as a dynamic user, state in /var/lib/exoclaw, sandboxed", async () => {
    const r = await runBinary(home, ["service", "install", "--print"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines).toContain("ExecStart=/usr/local/bin/exoclaw gateway");
    for (const d of [
      "DynamicUser=yes",
      "StateDirectory=exoclaw",
      "Environment=EXOCLAW_HOME=/var/lib/exoclaw",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateDevices=yes",
      "NoNewPrivileges=yes",
      "CapabilityBoundingSet=",
      "SystemCallFilter=@system-service",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "UMask=0077",
      "WantedBy=multi-user.target",
    ]) {
      expect(lines).toContain(d);
    }
    // Not wherever the binary was run from, nor this user's state directory.
    expect(r.stdout).not.toContain(await nativeBinary());
    expect(r.stdout).not.toContain(home.path);
  });

  const analyze = Bun.which("systemd-analyze");
  test.skipIf(!analyze)(
    `systemd-analyze security rates the printed unit's exposure at or below 2.5${analyze ? "" : " (skipped: no systemd-analyze on this machine)"}`,
    async () => {
      const unit = home.file("exoclaw.service", (await runBinary(home, ["service", "install", "--print"])).stdout);
      const p = Bun.spawnSync([analyze!, "security", "--offline=yes", "--no-pager", unit], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = p.stdout.toString() + p.stderr.toString();
      const level = /Overall exposure level for exoclaw\.service: ([\d.]+)/.exec(out)?.[1];
      expect(level).toBeDefined();
      expect(Number(level)).toBeLessThanOrEqual(2.5);
    },
  );

  // Run as root (CI is), `service install` would really install: the refusal is checked as nobody.
  const root = process.getuid?.() === 0;
  const setpriv = Bun.which("setpriv");
  test.skipIf(root && !setpriv)(
    `service install without root refuses with what to do, writes nothing${root && !setpriv ? " (skipped: root without setpriv to drop privileges)" : ""}`,
    async () => {
      const unitBefore = existsSync("/etc/systemd/system/exoclaw.service");
      const binBefore = existsSync("/usr/local/bin/exoclaw");
      // A copy nobody can run, and a state directory nobody owns, wherever this checkout lives.
      const dir = mkdtempSync(join(tmpdir(), "exoclaw-bin-nobody-"));
      try {
        chmodSync(dir, 0o755);
        const bin = join(dir, "exoclaw");
        copyFileSync(await nativeBinary(), bin);
        chmodSync(bin, 0o755);
        const state = join(dir, "state");
        Bun.spawnSync(["mkdir", "-m", "700", state]);
        if (root) chownSync(state, 65534, 65534);
        const env = { HOME: state, EXOCLAW_HOME: state, PATH: process.env.PATH ?? "/usr/bin:/bin" };
        const argv = root
          ? [setpriv!, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "service", "install"]
          : [bin, "service", "install"];
        const p = Bun.spawn(argv, { cwd: dir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
        const [stdout, stderr, code] = await Promise.all([
          new Response(p.stdout).text(),
          new Response(p.stderr).text(),
          p.exited,
        ]);
        expect({ code, stdout, stderr }).toEqual({
          code: 1,
          stdout: "",
          stderr:
            "exoclaw: a system service is written to /etc/systemd/system and installs /usr/local/bin/exoclaw: run it with sudo, or use --user\n",
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(existsSync("/etc/systemd/system/exoclaw.service")).toBe(unitBefore);
      expect(existsSync("/usr/local/bin/exoclaw")).toBe(binBefore);
    },
  );

  // The service's state directory belongs to its (dynamic) user; the operator runs the CLI with sudo.
  test.skipIf(!root || !setpriv)(
    `sudo secret set into the service's state dir: the gateway's user can read what root wrote; a file it cannot read is named as such${!root || !setpriv ? " (skipped: needs root and setpriv)" : ""}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "exoclaw-bin-owner-"));
      try {
        chmodSync(dir, 0o755);
        const bin = join(dir, "exoclaw");
        copyFileSync(await nativeBinary(), bin);
        chmodSync(bin, 0o755);
        const state = join(dir, "state");
        Bun.spawnSync(["mkdir", "-m", "700", state]);
        chownSync(state, 65534, 65534);
        writeFileSync(
          join(state, "config.toml"),
          '[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\n',
          { mode: 0o600 },
        );
        chownSync(join(state, "config.toml"), 65534, 65534);
        const env = { HOME: state, EXOCLAW_HOME: state, PATH: process.env.PATH ?? "/usr/bin:/bin" };
        const run = async (argv: string[], stdin?: string) => {
          const p = Bun.spawn(argv, {
            cwd: dir,
            env,
            stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
            stdout: "pipe",
            stderr: "pipe",
          });
          const [stdout, stderr, code] = await Promise.all([
            new Response(p.stdout).text(),
            new Response(p.stderr).text(),
            p.exited,
          ]);
          return { code, stdout, stderr };
        };
        const asService = (...args: string[]) =>
          run([setpriv!, "--reuid=65534", "--regid=65534", "--clear-groups", bin, ...args]);
        // Root (sudo) stores both secrets: they are handed to the directory's owner.
        expect((await run([bin, "secret", "set", "tg_secret"], "s3cret\n")).code).toBe(0);
        expect((await run([bin, "secret", "set", "tg_bot"], "123:abc\n")).code).toBe(0);
        for (const f of ["credentials", "credentials/tg_secret.key", "credentials/tg_bot.key"])
          expect(statSync(join(state, f)).uid).toBe(65534);
        expect(statSync(join(state, "credentials/tg_bot.key")).mode & 0o777).toBe(0o600);
        expect(await asService("config", "check")).toMatchObject({ code: 0 });
        // A file root left as its own (written by hand): not "missing", but unreadable, with who owns it.
        writeFileSync(join(state, "credentials/tg_bot.key"), "123:abc\n", { mode: 0o600 });
        chownSync(join(state, "credentials/tg_bot.key"), 0, 0);
        const check = await asService("config", "check");
        expect(check.code).toBe(1);
        expect(check.stderr).toContain("credential tg_bot: ");
        expect(check.stderr).toContain(
          "tg_bot.key exists but cannot be read: EACCES (owned by uid 0; this process is uid 65534)",
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
