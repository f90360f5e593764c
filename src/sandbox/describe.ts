/** The `describe` export's answer (SPEC §6), validated before a plugin is trusted with anything. */
import * as v from "valibot";
import { describeIssue, issuePath } from "../lib/issues.ts";
import { SandboxError } from "./errors.ts";

export const ABI_VERSION = 1;

const Tool = v.object({
  name: v.pipe(v.string(), v.regex(/^[a-zA-Z0-9_-]{1,64}$/, "tool names are 1-64 of [a-zA-Z0-9_-]")),
  description: v.string(),
  input_schema: v.record(v.string(), v.unknown()),
  /**
   * What a call can do beyond computing an answer (docs/plugins.md, approvals): "egress" — sends data
   * out (a request, a message); "mutates" — changes something (files, state others see). `[]` = pure.
   * Absent: "egress" for a plugin the operator granted hosts to, else pure.
   */
  effects: v.optional(v.array(v.picklist(["egress", "mutates"]))),
});

const Describe = v.object({
  abi: v.number(),
  name: v.pipe(v.string(), v.regex(/^[a-z0-9_-]+$/, "name must match [a-z0-9_-]+")),
  version: v.string(),
  kind: v.picklist(["tool", "channel"]),
  description: v.optional(v.string(), ""),
  tools: v.optional(v.array(Tool), []),
  channel: v.optional(
    v.object({
      id: v.string(),
      verify: v.picklist(["none", "telegram-secret", "discord-ed25519", "meta-hmac-sha256", "slack-v0"]),
      /**
       * How the platform answers a send (docs/plugins.md): "http" (the default) — the status decides;
       * "json_ok" — also a 2xx whose JSON body says `"ok": false` is a refusal (Slack, Telegram).
       */
      send_result: v.optional(v.picklist(["http", "json_ok"]), "http"),
      /**
       * The plugin turns format_outgoing's `buttons: [{text, data}]` into the platform's buttons and
       * reads a press back as a message with `action: {data}` (docs/plugins.md; approvals).
       */
      buttons: v.optional(v.boolean(), false),
      /**
       * Every message the platform delivered must be answered, or it stays shown as waiting (Discord's
       * deferred interaction, "thinking…"): a refused message then always gets a short notice.
       */
      must_answer: v.optional(v.boolean(), false),
    }),
  ),
  wants: v.optional(
    v.object({
      hosts: v.optional(v.array(v.string()), []),
      paths: v.optional(v.array(v.string()), []),
      secrets: v.optional(v.array(v.string()), []),
      /** One state for every caller instead of one per person; effective only if the operator grants it too. */
      shared_state: v.optional(v.boolean(), false),
    }),
    { hosts: [], paths: [], secrets: [], shared_state: false },
  ),
});

export type PluginDescription = v.InferOutput<typeof Describe>;

/** Exports each kind of plugin must have. */
export const REQUIRED_EXPORTS: Record<PluginDescription["kind"], readonly string[]> = {
  tool: ["call"],
  channel: ["parse_incoming", "format_outgoing"],
};

/** Parses and checks a describe output; throws SandboxError naming the problem. */
export function parseDescription(text: string, exports: readonly string[]): PluginDescription {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SandboxError("describe returned invalid JSON");
  }
  const abi = (raw as { abi?: unknown } | null)?.abi;
  if (typeof abi === "number" && abi !== ABI_VERSION) {
    throw new SandboxError(`the plugin declares ABI ${abi}; this exoclaw speaks ABI ${ABI_VERSION}`);
  }
  const r = v.safeParse(Describe, raw);
  if (!r.success) {
    const issue = r.issues[0]!;
    // The reason can quote the plugin's own value whole (a 200 KB string as the root, found by
    // tests/fuzz/plugins.test.ts): cut short, as every error message shown in `plugin list` and logs.
    const why = `${issuePath(issue)}: ${describeIssue(issue)}`;
    throw new SandboxError(`describe output is invalid: ${why.length > 300 ? `${why.slice(0, 300)}…` : why}`);
  }
  const d = r.output;
  const missing = REQUIRED_EXPORTS[d.kind].filter((e) => !exports.includes(e));
  if (missing.length > 0) throw new SandboxError(`a ${d.kind} plugin must export ${missing.join(", ")}`);
  if (d.kind === "tool" && d.tools.length === 0)
    throw new SandboxError("a tool plugin must describe at least one tool");
  return d;
}
