import { expect, test } from "bun:test";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

test("exoclaw usage reads the store when no gateway runs, per period, with budgets", async () => {
  using home = tempDir();
  home.file("config.toml", "[budgets]\ndaily_usd = 5\n");
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  const base = { agent: "main", provider: "anthropic", model: "claude-sonnet-4-5" };
  await store.recordUsage({
    ...base,
    at: Date.now(),
    session: "s1",
    input_tokens: 1000,
    output_tokens: 200,
    cost_usd: 0.006,
  });
  await store.recordUsage({
    ...base,
    at: Date.now() - 400 * 86_400_000,
    session: "s1",
    input_tokens: 5,
    output_tokens: 5,
    cost_usd: null,
  });
  await store.close();
  const env = { EXOCLAW_HOME: home.path };
  const r = await runExoclaw(["usage", "--port", "1"], env);
  expect(r.stderr).toBe("");
  expect(r.stdout).toContain("today            1 calls         1000 in         200 out   $0.0060");
  expect(r.stdout).toContain("all time         2 calls         1005 in         205 out   $0.0060 (+1 unpriced)");
  expect(r.stdout).toContain("budgets: daily_usd = 5");
  const j = JSON.parse((await runExoclaw(["usage", "--json", "--session", "nope", "--port", "1"], env)).stdout);
  expect(j.all.calls).toBe(0);
  using empty = tempDir();
  expect((await runExoclaw(["usage", "--port", "1"], { EXOCLAW_HOME: empty.path })).stdout).toContain(
    "budgets: none (unlimited)",
  );
});
