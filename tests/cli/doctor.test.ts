import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Check, diskStatus, execPaths, formatChecks, runDoctor } from "../../src/cli/_doctor.ts";
import { runExoclaw, spawnGateway } from "../helpers/cli.ts";
import { type TempDir, tempDir } from "../helpers/temp.ts";

const KEY = "sk-ant-doctor-secret-0123456789";
const TOKEN = "doctor-token-0123456789abcdef";

/** A state dir (mode 700, as tempDir makes it) with a config and credentials (mode 600). */
function stateDir(
  config: string | null,
  creds: Record<string, string> = {},
): TempDir & { env: Record<string, string> } {
  const home = tempDir("exoclaw-doctor-");
  if (config !== null) home.file("config.toml", config);
  if (Object.keys(creds).length > 0) {
    mkdirSync(join(home.path, "credentials"), { mode: 0o700 });
    for (const [name, value] of Object.entries(creds))
      writeFileSync(join(home.path, "credentials", `${name}.key`), value, { mode: 0o600 });
  }
  // No user unit of the machine's user, and no key from the environment of whoever runs the tests.
  return Object.assign(home, { env: { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: join(home.path, "xdg") } });
}

const TELEGRAM = `
[channels.telegram]
secrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }
`;
const HEALTHY = `
[gateway]
public_url = "https://bot.example.com"

[[agents]]
id = "main"
provider = "anthropic"
${TELEGRAM}`;
const HEALTHY_CREDS = { anthropic: KEY, telegram_webhook_secret: "whsec-1", telegram_bot_token: "123:bot" };

const lines = (stdout: string) => stdout.split("\n");
const byId = (checks: Check[], id: string) => checks.filter((c) => c.id === id);

/** A loopback stand-in for the providers' model lists and for a public URL's /health. */
function fakeApis(accept: string, health: unknown = { status: "ok", version: "9.9.9" }) {
  const seen: { path: string; headers: Record<string, string> }[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      seen.push({ path: url.pathname + url.search, headers: Object.fromEntries(req.headers) });
      if (url.pathname === "/health") return Response.json(health);
      if (url.pathname === "/v1/models") {
        const anthropic = req.headers.has("x-api-key");
        const key = anthropic
          ? req.headers.get("x-api-key")
          : req.headers.get("authorization")?.replace(/^Bearer /, "");
        if (key !== accept) {
          return anthropic
            ? Response.json(
                { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } },
                { status: 401 },
              )
            : Response.json(
                {
                  error: {
                    message: "Incorrect API key provided: sk-xxx.",
                    type: "invalid_request_error",
                    param: null,
                    code: "invalid_api_key",
                  },
                },
                { status: 401 },
              );
        }
        return anthropic
          ? Response.json({
              data: [{ type: "model", id: "claude-sonnet-4-5", display_name: "Claude Sonnet 4.5" }],
              has_more: false,
              first_id: "claude-sonnet-4-5",
              last_id: "claude-sonnet-4-5",
            })
          : Response.json({
              object: "list",
              data: [{ id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" }],
            });
      }
      return Response.json({ error: "not found" }, { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, seen, [Symbol.dispose]: () => server.stop(true) };
}

describe("exoclaw doctor (the real CLI)", () => {
  test("a healthy setup: exit 0, every line ok or warn, no secret printed", async () => {
    using home = stateDir(HEALTHY, HEALTHY_CREDS);
    const r = await runExoclaw(["doctor"], { ...home.env, EXOCLAW_TOKEN: TOKEN });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out).toContain(`ok    config     ${join(home.path, "config.toml")} is valid`);
    expect(out).toContain("ok    keys       anthropic: key from credentials/anthropic.key (used by agent main)");
    expect(out).toContain(
      "ok    channels   telegram: plugin telegram, secrets webhook_secret, bot_token present; webhook https://bot.example.com/webhook/telegram",
    );
    expect(out).toContain(`ok    state      ${home.path} is private (700), 3 credential(s), all 600`);
    expect(out).toContain("ok    exposure   bind 127.0.0.1 (loopback), token from EXOCLAW_TOKEN");
    expect(out).toContain("ok    unit       no systemd unit installed (exoclaw service install)");
    for (const id of ["plugins", "public_url", "disk", "gateway"])
      expect(r.stdout).toMatch(new RegExp(`^(ok|warn)  +${id} `, "m"));
    expect(r.stdout).not.toMatch(/^fail/m);
    for (const secret of [KEY, TOKEN, "whsec-1", "123:bot"]) expect(r.stdout).not.toContain(secret);
    expect(r.stdout).not.toContain("\x1b["); // no colours into a pipe
  });

  test("no config file: a warning that points at onboard, and the missing key fails", async () => {
    using home = stateDir(null);
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out).toContain(`warn  config     no config file at ${join(home.path, "config.toml")}: zero-config defaults`);
    expect(out).toContain("fail  keys       anthropic: no API key (used by agent main)");
    expect(out).toContain("      fix: exoclaw secret set anthropic (or set ANTHROPIC_API_KEY), or exoclaw onboard");
    expect(out.at(-2)).toMatch(/^1 failed, \d+ warning\(s\)$/);
  });

  test("an invalid config fails with the message `config check` gives: the file and the key path", async () => {
    using home = stateDir('[[agents]]\nid = "main"\nmodel = 5\n');
    const check = await runExoclaw(["config", "check"], home.env);
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(1);
    const message = check.stderr.replace(/^exoclaw: /, "").trim();
    expect(message).toContain("agents[0].model");
    expect(lines(r.stdout)).toContain(`fail  config     ${message}`);
    // What does not need the config is still checked.
    expect(r.stdout).toMatch(/^ok    state /m);
    expect(r.stdout).toMatch(/^ok    disk /m);
  });

  test("a channel secret that is blank, one that is missing, a role the plugin needs, and a plugin that does not exist", async () => {
    using home = stateDir(
      `[[agents]]\nid = "main"\nprovider = "ollama"\n${TELEGRAM}
[channels.slack]
secrets = { signing_secret = "slack_signing_secret" }

[channels.relay]
plugin = "relay"
`,
      { telegram_webhook_secret: "whsec-1", telegram_bot_token: " \n", slack_signing_secret: "s" },
    );
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out).toContain("ok    keys       ollama: needs no key (used by agent main)");
    expect(out).toContain("fail  channels   telegram: secret bot_token → credential telegram_bot_token is blank");
    expect(out).toContain("      fix: exoclaw secret set telegram_bot_token");
    expect(out).toContain(
      "fail  channels   slack: no credential for the secret role bot_token (plugin slack needs it)",
    );
    expect(out).toContain(
      '      fix: bot_token = "slack_bot_token" in secrets under [channels.slack], then exoclaw secret set slack_bot_token',
    );
    expect(r.stdout).toContain('fail  channels   relay: plugin "relay" is neither built-in');
    // Channels on a loopback gateway with no public URL: the platforms cannot call the webhooks.
    expect(r.stdout).toContain(
      "warn  public_url not set and the gateway listens on loopback only: platforms cannot reach the webhooks of telegram, slack, relay",
    );
  });

  test("a state dir others can enter, a key file and a database others can read", async () => {
    using home = stateDir(HEALTHY, HEALTHY_CREDS);
    writeFileSync(join(home.path, "exoclaw.db"), "");
    chmodSync(join(home.path, "exoclaw.db"), 0o644);
    chmodSync(join(home.path, "credentials/anthropic.key"), 0o644);
    chmodSync(home.path, 0o755);
    const r = await runExoclaw(["doctor"], { ...home.env, EXOCLAW_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out).toContain(`fail  state      ${home.path} is mode 755: other users can get into the state dir`);
    expect(out).toContain(`      fix: chmod 700 ${home.path}`);
    expect(out).toContain(
      `fail  state      ${join(home.path, "credentials/anthropic.key")} is mode 644: others can read this secret`,
    );
    expect(out).toContain(`      fix: chmod 600 ${join(home.path, "credentials/anthropic.key")}`);
    expect(out).toContain(
      `fail  state      ${join(home.path, "exoclaw.db")} is mode 644: every user can read the conversations`,
    );
  });

  test("api_key in the config file is a warning that recommends a credential file, and the key is never printed", async () => {
    using home = stateDir(`[[agents]]\nid = "main"\nprovider = "openai"\napi_key = "${KEY}"\n`);
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out).toContain("ok    keys       openai: key from api_key in the config file (used by agent main)");
    expect(out).toContain(
      `warn  state      ${join(home.path, "config.toml")} holds api_key for agent main: keys in config files get shared and committed`,
    );
    expect(out).toContain("      fix: exoclaw secret set openai, then delete the api_key line");
    expect(r.stdout).not.toContain(KEY);
  });

  test("a non-loopback bind without a token fails (the gateway would refuse); without TLS it warns", async () => {
    using home = stateDir(`[gateway]\nbind = "0.0.0.0"\n[[agents]]\nid = "main"\nprovider = "ollama"\n`);
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out).toContain("fail  exposure   bind 0.0.0.0 without a token: the gateway refuses to start");
    expect(r.stdout).toContain('or bind = "127.0.0.1" under [gateway]');
    expect(out).toContain(
      "warn  exposure   bind 0.0.0.0 without TLS: the token and the messages cross the network in clear",
    );
    // The token the user service reads from its environment file counts.
    home.file("gateway.env", `EXOCLAW_TOKEN="${TOKEN}"\n`);
    const withToken = await runExoclaw(["doctor"], home.env);
    expect(withToken.code).toBe(0);
    expect(withToken.stdout).not.toContain("refuses to start");
    expect(withToken.stdout).not.toContain(TOKEN);
  });

  test("a plugin with wide grants is named in a warning", async () => {
    using home = stateDir(`[[agents]]\nid = "main"\nprovider = "ollama"\n
[[plugins]]
name = "grabby"
path = "builtin:echo"
allowed_hosts = ["api.example.com", "*"]
allowed_paths = { "/" = "/root" }
shared_state = true
`);
    const r = await runExoclaw(["doctor"], home.env);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out).toContain('warn  exposure   plugin grabby: allowed_hosts "*" lets it reach (nearly) any host');
    expect(out).toContain("warn  exposure   plugin grabby: allowed_paths grants / (the whole filesystem)");
    expect(out).toContain(
      "warn  exposure   plugin grabby: shared_state = true, one state for every person (what one stores, the others can read)",
    );
  });

  test("a channel open to anyone, and one answering every group unmentioned, are named in warnings; pairing is not", async () => {
    using home = stateDir(`[[agents]]\nid = "main"\nprovider = "ollama"\n
[channels.http]

[channels.slack]
dm_policy = "open"

[channels.discord]
groups = ["*"]
require_mention = false

[channels.telegram]
`);
    const r = await runExoclaw(["doctor", "--json"], home.env);
    const exposure = (
      JSON.parse(r.stdout) as { checks: { id: string; status: string; message: string }[] }
    ).checks.filter((c) => c.id === "exposure");
    expect(exposure.map((c) => [c.status, c.message])).toEqual([
      ["warn", 'channel slack: dm_policy = "open" — anyone who finds it is answered and spends your budget'],
      ["warn", 'channel discord: every group is answered, mentioned or not (groups = ["*"], require_mention = false)'],
    ]);
  });

  test("--json: {checks:[{id,status,message,fix?}], ok}, and ok follows the exit code", async () => {
    using home = stateDir(null);
    const r = await runExoclaw(["doctor", "--json"], home.env);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { checks: Check[]; ok: boolean };
    expect(report.ok).toBe(false);
    expect(report.checks.length).toBeGreaterThan(5);
    for (const c of report.checks) {
      expect(Object.keys(c).filter((k) => !["id", "status", "message", "fix"].includes(k))).toEqual([]);
      expect(["ok", "warn", "fail"]).toContain(c.status);
      expect(typeof c.message).toBe("string");
    }
    expect(report.checks).toContainEqual({
      id: "keys",
      status: "fail",
      message: "anthropic: no API key (used by agent main)",
      fix: "exoclaw secret set anthropic (or set ANTHROPIC_API_KEY), or exoclaw onboard",
    });
    using healthy = stateDir(HEALTHY, HEALTHY_CREDS);
    const ok = await runExoclaw(["doctor", "--json", "--config", join(healthy.path, "config.toml")], {
      ...healthy.env,
      EXOCLAW_TOKEN: TOKEN,
    });
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.stdout) as { ok: boolean }).ok).toBe(true);
  });

  test("--online: a key the provider accepts, one it refuses (401), and the public URL's /health", async () => {
    using api = fakeApis(KEY);
    using home = stateDir(
      `[gateway]\npublic_url = "${api.url}"\n
[[agents]]
id = "main"
provider = "anthropic"
base_url = "${api.url}"

[[agents]]
id = "compat"
provider = "openai"
base_url = "${api.url}/v1"
`,
      { "agent-main": KEY, "agent-compat": "sk-wrong-key-000" },
    );
    const r = await runExoclaw(["doctor", "--online"], { ...home.env, EXOCLAW_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out).toContain(
      `ok    keys       agent main (anthropic at ${api.url}): ${api.url}/v1/models answered 200, key accepted`,
    );
    expect(out).toContain(
      `fail  keys       agent compat (openai at ${api.url}/v1): key refused (401 from ${api.url}/v1/models)`,
    );
    expect(out).toContain("      fix: exoclaw secret set agent-compat");
    expect(out).toContain(`ok    public_url ${api.url}/health answers (exoclaw 9.9.9)`);
    expect(out).toContain(
      `warn  public_url ${api.url} is not https: platforms want HTTPS webhooks, and the token would travel in clear`,
    );
    // The real wire shapes: Anthropic's key and version headers, OpenAI's bearer; the key in no URL.
    const anthropic = api.seen.find((s) => s.headers["x-api-key"]);
    expect(anthropic?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(api.seen.some((s) => s.headers.authorization === "Bearer sk-wrong-key-000")).toBe(true);
    for (const s of api.seen) expect(s.path).not.toContain(KEY);
    expect(r.stdout).not.toContain(KEY);
    expect(r.stdout).not.toContain("sk-wrong-key-000");
  });

  test("--online: a public URL that is not exoclaw fails with the URL tried; an unreachable provider warns", async () => {
    using api = fakeApis(KEY, { hello: "proxy default page" });
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const deadUrl = `http://127.0.0.1:${closed.port}`;
    closed.stop(true);
    using home = stateDir(
      `[gateway]\npublic_url = "${api.url}"\n[[agents]]\nid = "main"\nprovider = "ollama"\nbase_url = "${deadUrl}"\n`,
    );
    const r = await runExoclaw(["doctor", "--online"], { ...home.env, EXOCLAW_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toContain(`fail  public_url ${api.url}/health: an answer that is not exoclaw's /health`);
    expect(r.stdout).toContain(
      `warn  keys       agent main (ollama at ${deadUrl}): could not reach ${deadUrl}/api/tags (`,
    );
  });

  test("a gateway answering on the configured port is reported with its version", async () => {
    using home = stateDir(null);
    await using gw = await spawnGateway(["--port", "0"], home.env);
    const config = home.file(
      "doctor.toml",
      `[gateway]\nport = ${gw.port}\n[[agents]]\nid = "main"\nprovider = "ollama"\n`,
    );
    const r = await runExoclaw(["doctor", "--config", config], home.env);
    expect(r.stdout).toMatch(
      new RegExp(`^ok    gateway    gateway running at http://127\\.0\\.0\\.1:${gw.port} \\(\\d+\\.\\d+\\.\\d+`, "m"),
    );
    expect(r.code).toBe(0);
  });
});

describe("doctor's checks", () => {
  test("disk: fail under 100 MiB free, warn under 1 GiB", () => {
    const MiB = 1024 * 1024;
    expect(diskStatus(99 * MiB)).toBe("fail");
    expect(diskStatus(100 * MiB)).toBe("warn");
    expect(diskStatus(1023 * MiB)).toBe("warn");
    expect(diskStatus(1024 * MiB)).toBe("ok");
  });

  test("unit: absent, installed, or pointing at a binary that is gone", async () => {
    using home = stateDir(`[[agents]]\nid = "main"\nprovider = "ollama"\n`);
    const units = { system: join(home.path, "system/exoclaw.service"), user: join(home.path, "user/exoclaw.service") };
    expect(byId(await runDoctor({ env: home.env, units }), "unit")).toEqual([
      { id: "unit", status: "ok", message: "no systemd unit installed (exoclaw service install)" },
    ]);
    mkdirSync(join(home.path, "system"));
    mkdirSync(join(home.path, "user"));
    writeFileSync(
      units.user,
      `[Service]\nExecStart="${process.execPath}" /no/such/main.ts gateway --config /etc/x.toml\n`,
    );
    writeFileSync(units.system, "[Service]\nExecStart=/usr/local/bin/exoclaw gateway\n");
    const found = byId(await runDoctor({ env: home.env, units }), "unit");
    expect(found).toContainEqual({
      id: "unit",
      status: "warn",
      message: `user unit ${units.user}: ExecStart runs /no/such/main.ts, which does not exist`,
      fix: "exoclaw service install --user",
    });
    const system = found.find((c) => c.message.startsWith("system unit"));
    if (Bun.file("/usr/local/bin/exoclaw").size > 0) expect(system?.status).toBe("ok");
    else expect(system).toMatchObject({ status: "warn", fix: "sudo ./exoclaw-linux-x64 service install" });
    expect(execPaths('ExecStart="/opt/my apps/exoclaw" gateway --config /c.toml')).toEqual(["/opt/my apps/exoclaw"]);
  });

  test("keys: fallbacks need their provider's key; an agent with its own base_url never borrows the provider's", async () => {
    using home = stateDir(
      `[[agents]]
id = "main"
provider = "anthropic"
fallbacks = [{ provider = "openai", model = "gpt-4o" }, { provider = "gemini", model = "gemini-2.5-flash" }]

[[agents]]
id = "proxy"
provider = "anthropic"
base_url = "http://127.0.0.1:9/"
`,
      { anthropic: KEY },
    );
    const keys = byId(
      await runDoctor({
        env: { ...home.env, GEMINI_API_KEY: "g-key" },
        units: { system: "/nonexistent", user: "/nonexistent" },
      }),
      "keys",
    );
    expect(keys).toEqual([
      { id: "keys", status: "ok", message: "anthropic: key from credentials/anthropic.key (used by agent main)" },
      {
        id: "keys",
        status: "fail",
        message: "openai: no API key (used by agent main (fallback))",
        fix: "exoclaw secret set openai (or set OPENAI_API_KEY), or exoclaw onboard",
      },
      { id: "keys", status: "ok", message: "gemini: key from $GEMINI_API_KEY (used by agent main (fallback))" },
      {
        id: "keys",
        status: "warn",
        message:
          "agent proxy (anthropic at http://127.0.0.1:9/): no key, requests go without one (fine for a server that needs none; used by agent proxy)",
        fix: "exoclaw secret set agent-proxy",
      },
    ]);
  });

  test("--online, Gemini: a bad key is 400 API_KEY_INVALID, not 401, and still reads as refused", async () => {
    const seen: { url: string; key: string | null }[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        seen.push({ url: req.url, key: req.headers.get("x-goog-api-key") });
        const body = {
          error: {
            code: 400,
            message: "API key not valid. Please pass a valid API key.",
            status: "INVALID_ARGUMENT",
            details: [
              {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                reason: "API_KEY_INVALID",
                domain: "googleapis.com",
              },
            ],
          },
        };
        return Response.json(body, { status: 400 });
      },
    });
    try {
      const base = `http://127.0.0.1:${server.port}/v1beta`;
      using home = stateDir(`[[agents]]\nid = "main"\nprovider = "gemini"\nbase_url = "${base}"\n`, {
        "agent-main": "g-bad-key",
      });
      const keys = byId(await runDoctor({ env: home.env, online: true }), "keys");
      expect(keys.at(-1)).toEqual({
        id: "keys",
        status: "fail",
        message: `agent main (gemini at ${base}): key refused (400 from ${base}/models)`,
        fix: "exoclaw secret set agent-main",
      });
      expect(seen).toEqual([{ url: `${base}/models`, key: "g-bad-key" }]);
    } finally {
      server.stop(true);
    }
  });

  test("every part is checked, in order, and a loose setup fails in each part that is wrong", async () => {
    using home = stateDir(null, { telegram_webhook_secret: "whsec-1" });
    home.file(
      "config.toml",
      `[gateway]\nbind = "0.0.0.0"\npublic_url = "http://bot.example.com"\n[[agents]]\nid = "main"\nprovider = "openai"\napi_key = "${KEY}"\n${TELEGRAM}
[[plugins]]
name = "files"
path = "builtin:echo"
allowed_hosts = ["https://*.com:443"]
allowed_paths = { "${home.path}" = "/data" }
`,
    );
    chmodSync(join(home.path, "credentials"), 0o755);
    chmodSync(home.path, 0o750);
    writeFileSync(join(home.path, "exoclaw.db"), "", { mode: 0o640 });
    chmodSync(join(home.path, "exoclaw.db"), 0o640);
    const checks = await runDoctor({ env: home.env, units: { system: "/nonexistent", user: "/nonexistent" } });
    const ids = [...new Set(checks.map((c) => c.id))];
    expect(ids).toEqual([
      "config",
      "keys",
      "state",
      "channels",
      "plugins",
      "public_url",
      "exposure",
      "unit",
      "disk",
      "gateway",
    ]);
    const said = checks.map((c) => `${c.status} ${c.message}`);
    expect(said).toContain(`warn ${home.path} is mode 750: its group can get into the state dir`);
    expect(said).toContain(`fail ${join(home.path, "credentials")} is mode 755: others can list the credentials`);
    expect(said).toContain(`warn ${join(home.path, "exoclaw.db")} is mode 640: its group can read the conversations`);
    expect(said).toContain("fail telegram: secret bot_token → credential telegram_bot_token is missing");
    expect(said).toContain(
      "warn http://bot.example.com is not https: platforms want HTTPS webhooks, and the token would travel in clear",
    );
    expect(said).toContain("fail bind 0.0.0.0 without a token: the gateway refuses to start");
    expect(said).toContain(
      "warn public_url http://bot.example.com without a token: set one, so only you can use /ws, the web page and the http channel from there",
    );
    expect(said).toContain('warn plugin files: allowed_hosts "https://*.com:443" lets it reach (nearly) any host');
    expect(said).toContain(
      `warn plugin files: allowed_paths grants ${home.path} (it holds the state dir and its credentials)`,
    );
    // Bound to every address but behind a public URL: no "in clear" warning about the bind itself.
    expect(said.some((m) => m.includes("without TLS"))).toBe(false);
    expect(JSON.stringify(checks)).not.toContain(KEY);
  });

  test("plugins: a file changed since it was pinned, and a granted secret that is missing", async () => {
    using home = stateDir(`[[agents]]\nid = "main"\nprovider = "ollama"\n
[[plugins]]
name = "weather"
path = "plugins/weather.wasm"
sha256 = "${"0".repeat(64)}"
secrets = ["weather_key"]
`);
    mkdirSync(join(home.path, "plugins"));
    home.file("plugins/weather.wasm", "not the approved bytes");
    const plugins = byId(await runDoctor({ env: home.env }), "plugins");
    expect(plugins[0]).toMatchObject({
      status: "fail",
      fix: "exoclaw plugin load plugins/weather.wasm --name weather",
    });
    expect(plugins[0]!.message).toContain("changed since it was approved");
    expect(plugins[1]).toEqual({
      id: "plugins",
      status: "warn",
      message: "weather: secret weather_key is missing (calls that use it will fail)",
      fix: "exoclaw secret set weather_key",
    });
  });

  test("the report: a line per check, the fix indented below, colours only when asked", () => {
    const checks: Check[] = [
      { id: "config", status: "ok", message: "fine" },
      { id: "keys", status: "fail", message: "no key", fix: "exoclaw secret set openai" },
    ];
    expect(formatChecks(checks, false)).toBe(
      "ok    config     fine\nfail  keys       no key\n      fix: exoclaw secret set openai\n\n1 failed",
    );
    expect(formatChecks(checks, true)).toContain("\x1b[31mfail  \x1b[0mkeys");
    expect(formatChecks([checks[0]!], false).endsWith("all checks passed")).toBe(true);
  });
});
