/**
 * The compiled binary through a new user's first steps: scripted onboarding against an
 * OpenAI-compatible server, `config check`, a gateway, `chat` answering (and failing cleanly), and
 * the CLI's exit codes — from a directory with no source tree, in a bare environment, with a .env
 * and bunfig.toml in the working directory that the binary must not read.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../../package.json";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";
import { lastUserText, openaiReply } from "./_replies.ts";

const KEY = "sk-binary-onboard-0123456789";
const MODEL = "gpt-4o-mini";

describe.if(NATIVE !== undefined)("the binary: onboard, config check, gateway, chat", () => {
  const home = binaryHome();
  // Answers what it was told; "please fail" gets the 401 of a revoked key (not retried).
  const up = startFakeUpstream((req) =>
    lastUserText(req) === "please fail"
      ? {
          status: 401,
          headers: { "content-type": "application/json" },
          body: '{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}',
        }
      : { body: openaiReply(`you said: ${lastUserText(req)}`) },
  );
  let gw: BinaryGateway | undefined;

  beforeAll(async () => {
    await nativeBinary();
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("--version prints the package version and nothing else", async () => {
    expect(await runBinary(home, ["--version"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("--help into a pipe is plain text: the commands, no colour codes", async () => {
    const r = await runBinary(home, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("doctor");
    expect(r.stdout).not.toContain("\x1b[");
  });

  test("an unknown option is a usage error: exit 2, one line on stderr, no stack trace", async () => {
    const r = await runBinary(home, ["gateway", "--tokn", "s3cret"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("exoclaw: unknown option --tokn for `exoclaw gateway`\n");
    const chat = await runBinary(home, ["chat", "--agnet", "main", "hi"]);
    expect(chat.code).toBe(2);
    expect(chat.stderr).toContain("unknown option --agnet");
    expect(chat.stderr).not.toContain("    at ");
  });

  test("scripted onboard writes the config and a mode-600 key; config check accepts it with the key nowhere in sight", async () => {
    const r = await runBinary(
      home,
      ["onboard", "--provider", "openai", "--model", MODEL, "--base-url", `${up.url}/v1`, "--api-key-stdin", "--yes"],
      { stdin: `${KEY}\n` },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `wrote ${join(home.path, "config.toml")} (agent "main": openai ${MODEL} at ${up.url}/v1)`,
    );
    const cfg = await Bun.file(join(home.path, "config.toml")).text();
    expect(cfg).not.toContain(KEY);
    const keyFile = r.stdout.match(/stored the API key in (\S+) \(mode 600\)/)?.[1];
    expect(keyFile).toBeDefined();
    expect(statSync(keyFile!).mode & 0o777).toBe(0o600);
    expect((await Bun.file(keyFile!).text()).trim()).toBe(KEY);

    const check = await runBinary(home, ["config", "check"]);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    expect(check.stdout).toStartWith(`config ok: ${join(home.path, "config.toml")}\n`);
    expect(check.stdout).toContain(`"model": "${MODEL}"`);
    expect(check.stdout).not.toContain(KEY);
  });

  test("the gateway starts on that config, ignoring the cwd's .env and bunfig.toml", async () => {
    gw = await startBinaryGateway(home);
    const health = await fetch(`${gw.url}/health`);
    expect(await health.json()).toEqual({ status: "ok", version: pkg.version });
    // The cwd's .env sets EXOCLAW_TOKEN: a binary that loaded it would require that token.
    const status = await runBinary(home, ["status", "--json", "--port", String(gw.port)]);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      version: pkg.version,
      port: gw.port,
      auth: { token_required: false },
      config_file: join(home.path, "config.toml"),
    });
  });

  test("exoclaw chat MESSAGE prints the answer and exits 0; the upstream got the onboarded model and key", async () => {
    const r = await runBinary(home, ["chat", "--port", String(gw!.port), "hello"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("you said: hello\n");
    expect(r.code).toBe(0);
    const req = up.requests.at(-1)!;
    expect(req.path).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.body).toMatchObject({ model: MODEL, stream: true });
  });

  test("a failed turn: exit 1 and the provider's reason on stderr, no stack trace; the gateway keeps serving", async () => {
    const r = await runBinary(home, ["chat", "--port", String(gw!.port), "please fail"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("error: openai: authentication failed (401) — check the API key\n");
    expect((await runBinary(home, ["chat", "--port", String(gw!.port), "still there?"])).stdout).toBe(
      "you said: still there?\n",
    );
    expect(gw!.logs.map((l) => JSON.stringify(l)).join("\n")).not.toContain(KEY);
  });

  test("chat with no gateway answering: exit 1 with what to do", async () => {
    // A port nothing listens on: the fake upstream's, once stopped, is not reliable; ask the OS for one.
    const free = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = free.port;
    await free.stop(true);
    const r = await runBinary(home, ["chat", "--port", String(port), "anyone?"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `exoclaw: no gateway is answering at ws://127.0.0.1:${port}/ws (is \`exoclaw gateway\` running?)\n`,
    );
  });
});
