/**
 * Fuzzing config files (issue 15): arbitrary text, mutated TOML, and objects shaped by the config's
 * own valibot schema (right keys, any values; wrong types planted at random nodes) serialised with
 * smol-toml. Property: loadConfig returns a config or throws a ConfigError whose message names the
 * file — never another error type (a stack trace at the CLI), never a hang.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "smol-toml";
import type * as v from "valibot";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/temp.ts";
import { params, TIMEOUT } from "./_fuzz.ts";

const home = tempDir("exoclaw-fuzz-config-");
const file = join(home.path, "config.toml");
afterAll(() => home[Symbol.dispose]());

/** Values TOML can hold: what a wrong type at any key looks like. */
const tomlLeaf = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 10 }),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(Number),
  fc.double(),
  fc.boolean(),
  fc.date({ noInvalidDate: true }),
  fc.constantFrom(
    "",
    "*",
    "..",
    "../../etc/passwd",
    "builtin:telegram",
    "0.0.0.0",
    "::",
    "auto",
    "anthropic",
    "openai",
    "pairing",
    "open",
    "sqlite",
    "nats",
  ),
);
const tomlAny: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: "small" },
    { weight: 4, arbitrary: tomlLeaf },
    { weight: 1, arbitrary: fc.array(tie("any"), { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), tie("any"), { maxKeys: 3 }) },
  ),
})).any;

type Schema = v.GenericSchema & {
  type: string;
  entries?: Record<string, Schema>;
  wrapped?: Schema;
  item?: Schema;
  value?: Schema;
  key?: Schema;
  options?: unknown[];
  literal?: unknown;
  getter?: () => Schema;
};

/** Arbitrary values following `schema`'s shape, with a wrong-typed value at about one node in eight. */
function shaped(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const right = rightShaped(schema, depth);
  return depth > 6 ? right : fc.oneof({ weight: 7, arbitrary: right }, { weight: 1, arbitrary: tomlAny });
}
function rightShaped(s: Schema, depth: number): fc.Arbitrary<unknown> {
  switch (s.type) {
    case "optional":
    case "exact_optional":
    case "nullish":
    case "non_optional":
      return s.wrapped ? shaped(s.wrapped, depth) : tomlAny;
    case "object":
    case "strict_object":
    case "loose_object": {
      const entries = Object.entries(s.entries ?? {}).map(([k, e]) => [k, shaped(e, depth + 1)] as const);
      const rec = fc.record(Object.fromEntries(entries), { requiredKeys: [] });
      // Now and then a key the schema does not know.
      return fc
        .tuple(rec, fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), tomlLeaf), { freq: 8 }))
        .map(([o, extra]) => (extra ? { ...o, [extra[0]]: extra[1] } : o));
    }
    case "array":
      return fc.array(s.item ? shaped(s.item, depth + 1) : tomlAny, { maxLength: 3 });
    case "record":
      return fc.dictionary(
        fc.oneof(
          fc.constantFrom("telegram", "slack", "http", "discord", "whatsapp", "main"),
          fc.string({ maxLength: 10 }),
        ),
        s.value ? shaped(s.value, depth + 1) : tomlAny,
        { maxKeys: 3 },
      );
    case "union":
    case "variant":
      return fc.oneof(...((s.options ?? []) as Schema[]).map((o) => shaped(o, depth)));
    case "picklist":
      return fc.constantFrom(...((s.options ?? [""]) as unknown[]));
    case "literal":
      return fc.constant(s.literal);
    case "lazy":
      return s.getter ? shaped(s.getter(), depth) : tomlAny;
    case "string":
      return fc.oneof(
        fc.string({ maxLength: 20 }),
        tomlLeaf.filter((x) => typeof x === "string"),
      );
    case "number":
      return fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.double());
    case "boolean":
      return fc.boolean();
    default:
      return tomlAny;
  }
}

/** A plausible config to start mutations from. */
const BASE = `[gateway]
bind = "127.0.0.1"
port = 7200
max_payload_bytes = 1048576
allowed_origins = ["https://a.example"]

[[agents]]
id = "main"
provider = "anthropic"
model = "claude-sonnet-4-5"
fallbacks = [{ provider = "openai", model = "gpt-4o" }]

[[bindings]]
agent = "main"
channel = "telegram"
peer = "12345"

[channels.telegram]
secrets = { bot_token = "telegram_bot_token", webhook_secret = "telegram_webhook_secret" }
dm_policy = "pairing"

[budgets]
daily_tokens = 2000000
monthly_usd = 50
`;
const edits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ unit: "binary", maxLength: 6 })), {
  minLength: 1,
  maxLength: 6,
});
const mutatedText = edits.map((es) => {
  let t = BASE;
  for (const [at, del, ins] of es) {
    const i = at % (t.length + 1);
    t = t.slice(0, i) + ins + t.slice(i + del);
  }
  return t;
});
const tomlChars = fc.string({ unit: fc.constantFrom(..."[]{}=\"'.,\n#\\ \tabc019+-:_".split("")), maxLength: 120 });

const objectText = shaped(ConfigSchema as unknown as Schema).map((o) => {
  try {
    return stringify(o as Record<string, unknown>);
  } catch {
    return "";
  }
});

const anyText = fc.oneof(
  { weight: 4, arbitrary: objectText },
  { weight: 3, arbitrary: mutatedText },
  { weight: 1, arbitrary: tomlChars },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 50_000 }).map((d) => `a = ${"[".repeat(d)}${"]".repeat(d)}\n`) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 50_000 }).map((d) => `a = ${"{ b = ".repeat(d)}1${" }".repeat(d)}\n`),
  },
);

function outcome(text: string): "ok" | "config_error" {
  writeFileSync(file, text);
  try {
    loadConfig({ EXOCLAW_HOME: home.path }, { file });
    return "ok";
  } catch (e) {
    if (!(e instanceof ConfigError))
      throw new Error(`loadConfig threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    if (!e.message.includes(file)) throw new Error(`ConfigError does not name the file: ${e.message}`);
    return "config_error";
  }
}

describe("fuzz: config files", () => {
  test(
    "any text loads or is a ConfigError naming the file",
    () => {
      const seen = { ok: 0, config_error: 0 };
      fc.assert(
        fc.property(anyText, (text) => {
          seen[outcome(text)]++;
        }),
        params(500),
      );
      if (process.env.FUZZ_DEBUG) console.log(seen);
      // The generator reaches both sides (a fuzzer whose every case is refused would test little).
      expect(seen.ok).toBeGreaterThan(0);
      expect(seen.config_error).toBeGreaterThan(0);
    },
    TIMEOUT,
  );
});
