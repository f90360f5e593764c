/**
 * `exoclaw onboard`: first-run setup. Asks (with @clack/prompts) for a provider, its API key
 * (hidden input) and a model, then writes `<state>/config.toml` and the key as a mode-600
 * credential file — never into the config. For scripts: `--provider P --model M --api-key-stdin --yes`.
 * Before anything is written the key is tried with one cheap call (the provider's model list; see
 * _key-check.ts): a refused key is asked again (interactive) or fails the command (--yes); no answer
 * is only a warning. `--skip-check` skips the call.
 */
import { defineCommand } from "citty";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import {
  giveToStateOwner,
  isProviderId,
  loadConfig,
  PROVIDER_IDS,
  type ProviderId,
  PROVIDERS,
  resolveConfigPath,
  takesNoKey,
  writeCredential,
} from "../config/index.ts";
import { AuthError, UsageError } from "../lib/errors.ts";
import { stringFlag } from "./_args.ts";
import { checkKey, type KeyCheck } from "./_key-check.ts";

type ProviderName = ProviderId;

/** The model onboarding proposes per provider (the registry's, src/config/providers.ts). */
export const DEFAULT_MODELS = Object.fromEntries(PROVIDER_IDS.map((id) => [id, PROVIDERS[id].defaultModel])) as Record<
  ProviderName,
  string
>;

/**
 * Onboarding an existing config changes only the `main` agent (added first when missing): the
 * channels, plugins, bindings and everything else stay. The file is re-written from its parsed form,
 * so comments go; the caller keeps a backup of the original.
 */
export function mergeOnboard(existing: string, provider: ProviderName, model: string, baseUrl: string): string {
  const doc = parseToml(existing) as Record<string, unknown>;
  const agents = Array.isArray(doc.agents) ? (doc.agents as Record<string, unknown>[]) : [];
  const main = agents.find((a) => a.id === "main");
  const fields = { provider, model, ...(baseUrl ? { base_url: baseUrl } : {}) };
  if (main) {
    Object.assign(main, fields);
    if (!baseUrl) delete main.base_url;
  } else agents.unshift({ id: "main", ...fields });
  doc.agents = agents;
  return `# Written by \`exoclaw onboard\` (merged into the earlier file). Reference: docs/configuration.md\n\n${stringifyToml(doc)}\n`;
}

/** The config file onboard writes: one default agent. */
export function onboardConfig(provider: ProviderName, model: string, baseUrl = ""): string {
  return [
    "# Written by `exoclaw onboard`. Reference: docs/configuration.md",
    "",
    "[gateway]",
    'bind = "127.0.0.1"',
    "port = 7200",
    "",
    "[[agents]]",
    'id = "main"',
    `provider = "${provider}"`,
    `model = ${JSON.stringify(model)}`,
    ...(baseUrl ? [`base_url = ${JSON.stringify(baseUrl)}`] : []),
    "",
  ].join("\n");
}

const isProvider = isProviderId;

export default defineCommand({
  meta: { name: "onboard", description: "First-run setup: provider, API key, model → config and credential file" },
  args: {
    provider: { type: "string", description: `One of ${PROVIDER_IDS.join(", ")}` },
    model: { type: "string", description: "Model name (default depends on the provider)" },
    "api-key-stdin": { type: "boolean", description: "Read the API key from stdin (for scripts)" },
    "base-url": {
      type: "string",
      description: "The provider's endpoint, for OpenAI-compatible servers and Ollama (e.g. http://127.0.0.1:11434)",
    },
    yes: { type: "boolean", description: "Do not ask (an existing config is merged, with a backup)" },
    "skip-check": { type: "boolean", description: "Do not try the key against the provider before storing it" },
    config: { type: "string", description: "Config file to write (default: <state>/config.toml)" },
  },
  async run({ args }) {
    const env = process.env;
    const home = loadConfig({ ...env, EXOCLAW_CONFIG: undefined }, {}).home;
    const file = resolveConfigPath(env, stringFlag("config", args.config)).path;
    const interactive = !args.yes;
    if (interactive && !process.stdin.isTTY) {
      throw new UsageError(
        "onboard needs a terminal; for scripts use --provider P [--model M] [--api-key-stdin] --yes",
      );
    }
    let provider = stringFlag("provider", args.provider);
    let model = stringFlag("model", args.model);
    let apiKey: string | undefined;
    let baseUrl = stringFlag("base-url", args["base-url"]);
    if (baseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(baseUrl))
      throw new UsageError(`--base-url: expected an http(s) URL, got "${baseUrl}"`);
    if (args["api-key-stdin"]) apiKey = (await new Response(Bun.stdin.stream()).text()).trim();

    if (interactive) {
      const p = await import("@clack/prompts");
      const stop = (v: unknown): never => {
        p.cancel("Nothing was written.");
        process.exit(1);
        return v as never;
      };
      p.intro("exoclaw onboard");
      if (existsSync(file)) {
        const ok = await p.confirm({
          message: `${file} exists. Update its "main" agent (channels, plugins and bindings stay; a backup is kept)?`,
          initialValue: true,
        });
        if (p.isCancel(ok) || !ok) stop(ok);
      }
      if (!provider) {
        const v = await p.select({
          message: "Which model provider?",
          options: PROVIDER_IDS.map((x) => ({ value: x, label: PROVIDERS[x].label })),
        });
        provider = p.isCancel(v) ? stop(v) : String(v);
      }
      if (!(isProvider(provider) && takesNoKey(provider)) && apiKey === undefined) {
        const v = await p.password({
          message: `${provider} API key (stored in ${home}/credentials/${provider}.key, mode 600)`,
        });
        apiKey = p.isCancel(v) ? stop(v) : v;
      }
      if (!model && isProvider(provider)) {
        const v = await p.text({ message: "Model", initialValue: DEFAULT_MODELS[provider] });
        model = p.isCancel(v) ? stop(v) : v;
      }
      const hint = isProvider(provider) ? PROVIDERS[provider].endpointHint : undefined;
      if (baseUrl === undefined && hint !== undefined) {
        const v = await p.text({
          message: `Endpoint (blank for ${hint}; an OpenAI-compatible server's URL ends in /v1)`,
          defaultValue: "",
        });
        baseUrl = p.isCancel(v) ? stop(v) : v.trim();
      }
      while (!args["skip-check"] && isProvider(provider) && (apiKey || takesNoKey(provider))) {
        const s = p.spinner();
        s.start(takesNoKey(provider) ? `Checking that ${provider} answers` : `Checking the key with ${provider}`);
        const r = await checkKey(provider, apiKey ?? "", baseUrl ?? "");
        s.stop(describeCheck(provider, r));
        if (r.kind !== "refused") break;
        const next = await p.select({
          message: `${provider} refused this key. What now?`,
          options: [
            { value: "again", label: "Enter the key again" },
            { value: "keep", label: "Keep it anyway" },
          ],
        });
        if (p.isCancel(next)) stop(next);
        if (next === "keep") break;
        const v = await p.password({ message: `${provider} API key` });
        apiKey = p.isCancel(v) ? stop(v) : v;
      }
    } else if (!provider) {
      throw new UsageError("--provider is required with --yes");
    }
    if (!provider || !isProvider(provider))
      throw new UsageError(`--provider: expected one of ${PROVIDER_IDS.join(", ")}, got "${provider ?? ""}"`);
    model ||= DEFAULT_MODELS[provider];
    const checked: string[] = [];
    if (!interactive && !args["skip-check"] && (apiKey || takesNoKey(provider))) {
      const r = await checkKey(provider, apiKey ?? "", baseUrl ?? "");
      if (r.kind === "refused") {
        throw new AuthError(
          `${provider} refused the key (${r.status} from ${r.url}): nothing was written; check the key, or pass --skip-check to store it anyway`,
        );
      }
      if (r.kind === "accepted") checked.push(describeCheck(provider, r));
      else process.stderr.write(`warning: ${describeCheck(provider, r)}\n`);
    }

    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
    let backup: string | null = null;
    if (existsSync(file)) {
      const before = readFileSync(file, "utf8");
      const merged = mergeOnboard(before, provider, model, baseUrl ?? "");
      backup = `${file}.bak-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      writeFileSync(backup, before, { mode: 0o600 });
      writeFileSync(file, merged, { mode: 0o600 });
      try {
        loadConfig({ ...env, EXOCLAW_CONFIG: file }, {});
      } catch (e) {
        writeFileSync(file, before, { mode: 0o600 });
        throw e;
      }
    } else writeFileSync(file, onboardConfig(provider, model, baseUrl ?? ""), { mode: 0o600 });
    giveToStateOwner(home, [file, ...(backup ? [backup] : [])]);
    // A key for a custom endpoint is that agent's own: provider-wide keys never go to a custom base_url.
    const keyPath = apiKey ? writeCredential(home, baseUrl ? "agent-main" : provider, apiKey) : null;
    const lines = [
      `wrote ${file} (agent "main": ${provider} ${model}${baseUrl ? ` at ${baseUrl}` : ""})`,
      ...(backup ? [`kept the other settings; the previous file is saved as ${backup}`] : []),
      ...checked,
      keyPath
        ? `stored the API key in ${keyPath} (mode 600)`
        : takesNoKey(provider)
          ? `${provider} needs no API key`
          : `no API key stored: set ${PROVIDERS[provider].keyEnv} or run \`exoclaw secret set ${provider}\``,
      "next: exoclaw gateway   (then: exoclaw chat)",
    ];
    if (interactive) (await import("@clack/prompts")).outro(lines.join("\n"));
    else process.stdout.write(lines.join("\n") + "\n");
  },
});

/** One line on how the key check went (never the key). */
export function describeCheck(provider: ProviderName, r: KeyCheck): string {
  const keyless = takesNoKey(provider);
  const what = keyless ? provider : "the key";
  switch (r.kind) {
    case "accepted":
      return keyless ? `${provider} answered at ${r.url}` : `checked the key: ${provider} accepted it`;
    case "refused":
      return `${provider} refused the key (${r.status} from ${r.url})`;
    case "unreachable":
      return `could not check ${what} (offline?): ${r.detail} (${r.url}); continuing`;
    case "inconclusive":
      return `could not check ${what}: ${r.url} answered ${r.status}; continuing`;
    default: {
      const never: never = r;
      return String(never);
    }
  }
}
