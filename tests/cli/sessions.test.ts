import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import { join } from "node:path";
import { runCli } from "../../src/cli/_run.ts";
import { root } from "../../src/cli/index.ts";
import { formatPart } from "../../src/cli/sessions.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { MAIN, runExoclaw } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { addr } from "../store/contract.ts";

const say = (text: string) => ({ role: "user" as const, parts: [{ type: "text" as const, text }] });

async function seed(home: string) {
  const store = openSqliteStore(join(home, "exoclaw.db"));
  await store.appendMessages(addr("42"), [
    say("hello"),
    {
      role: "assistant",
      parts: [
        { type: "text", text: "checking" },
        { type: "tool_use", id: "t1", name: "weather", input: { city: "Oslo" } },
      ],
    },
  ]);
  await store.appendMessages(addr("43", { channel: "discord" }), [say("yo")]);
  await store.close();
}

describe("exoclaw sessions, no gateway running (reads the store directly)", () => {
  test("list, show and reset as a real process", async () => {
    using home = tempDir();
    await seed(home.path);
    const env = { EXOCLAW_HOME: home.path };
    const port = ["--port", "1"]; // nothing listens on port 1
    const list = await runExoclaw(["sessions", "list", ...port], env);
    expect(list.stderr).toBe("");
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("main:telegram:bot1:42");
    expect(list.stdout).toContain("main:discord:bot1:43");
    const filtered = await runExoclaw(["sessions", "list", "--channel", "discord", "--json", ...port], env);
    expect(JSON.parse(filtered.stdout).sessions.map((s: { key: string }) => s.key)).toEqual(["main:discord:bot1:43"]);
    const show = await runExoclaw(["sessions", "show", "main:telegram:bot1:42", ...port], env);
    expect(show.stdout).toBe('#1 user: hello\n#2 assistant: checking [tool_use weather {"city":"Oslo"}]\n');
    const reset = await runExoclaw(["sessions", "reset", "main:telegram:bot1:42", ...port], env);
    expect(reset.stdout).toBe("reset main:telegram:bot1:42: removed 2 message(s)\n");
    const again = await runExoclaw(["sessions", "show", "main:telegram:bot1:42", ...port], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe("exoclaw: no session main:telegram:bot1:42\n");
  });

  test("with no database yet there are no sessions, and none is created", async () => {
    using home = tempDir();
    const r = await runExoclaw(["sessions", "--port", "1"], { EXOCLAW_HOME: home.path });
    expect(r).toMatchObject({ code: 0, stdout: "no sessions\n" });
    expect(await Bun.file(join(home.path, "exoclaw.db")).exists()).toBe(false);
  });
});

describe("exoclaw sessions with a gateway running (goes through it)", () => {
  let out: string[];
  let err: string[];
  let spy: ReturnType<typeof spyOn>;
  const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), debug: false };
  const savedHome = process.env.EXOCLAW_HOME;
  beforeEach(() => {
    out = [];
    err = [];
    spy = spyOn(process.stdout, "write").mockImplementation(((c: string) => (out.push(String(c)), true)) as never);
  });
  afterEach(() => {
    spy.mockRestore();
    if (savedHome === undefined) delete process.env.EXOCLAW_HOME;
    else process.env.EXOCLAW_HOME = savedHome;
  });

  test("a memory-store gateway's sessions are visible only through the gateway", async () => {
    await using gw = await startTestGateway({ toml: '[store]\nkind = "memory"\n' });
    process.env.EXOCLAW_HOME = gw.home;
    for (let i = 0; i < 3; i++)
      await gw.store.appendMessages(
        addr(`m${i}`),
        Array.from({ length: 60 }, (_, j) => say(`t${j}`)),
      );
    const port = ["--port", String(gw.port)];
    expect(await runCli(root, ["sessions", "list", "--limit", "2", ...port], io)).toBe(0);
    const text = out.join("");
    expect(text.match(/main:telegram:bot1:m\d/g)).toHaveLength(2);
    expect(text).toMatch(/more: exoclaw sessions list --cursor \S+/);
    out = [];
    expect(await runCli(root, ["sessions", "show", addr("m1").key, "--limit", "3", ...port], io)).toBe(0);
    expect(out.join("")).toBe("… 57 earlier message(s)\n#58 user: t57\n#59 user: t58\n#60 user: t59\n");
    out = [];
    expect(await runCli(root, ["sessions", "reset", addr("m1").key, "--json", ...port], io)).toBe(0);
    expect(JSON.parse(out.join(""))).toEqual({ session: addr("m1").key, removed_messages: 60 });
    expect(await gw.store.getSession(addr("m1").key)).toBeNull();
    expect(await runCli(root, ["sessions", "reset", addr("m1").key, ...port], io)).toBe(1);
    expect(err.at(-1)).toBe(`exoclaw: gateway: no session ${addr("m1").key}`);
    expect(await runCli(root, ["sessions", "list", "--limit", "0", ...port], io)).toBe(2);
  });

  test("a gateway that refuses the token is an error, not a fallback to the store", async () => {
    await using gw = await startTestGateway({ token: "right-token-123" });
    process.env.EXOCLAW_HOME = gw.home;
    expect(await runCli(root, ["sessions", "list", "--port", String(gw.port), "--token", "wrong"], io)).toBe(1);
    expect(err.at(-1)).toContain("refused the token");
  });
});

test("formatPart renders tool results", () => {
  expect(formatPart({ type: "tool_result", tool_use_id: "t", content: "boom", is_error: true })).toBe(
    "[tool_result (error) boom]",
  );
});

test("`sessions list | head -1` ends quietly: a reader that leaves early is no error", async () => {
  using home = tempDir();
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  for (let i = 0; i < 3000; i++) await store.appendMessages(addr(`p${i}`), [say("hello ".repeat(20))]);
  await store.close();
  const p = Bun.spawn(
    ["bash", "-c", `"${process.execPath}" "${MAIN}" sessions list --port 1 | head -1; exit "\${PIPESTATUS[0]}"`],
    {
      env: { PATH: process.env.PATH ?? "", HOME: home.path, EXOCLAW_HOME: home.path },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  expect(stdout.split("\n")[0]).toStartWith("SESSION");
  expect(stderr).toBe("");
  expect(code).toBe(0);
});
