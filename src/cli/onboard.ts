/**
 * `exoclaw onboard`: first-run setup. Asks (with @clack/prompts) for a provider, its API key
 * (hidden input) and a model, then writes `<state>/config.toml` and the key as a mode-600
 * credential file — never into the config. For scripts: `--provider P --model M --api-key-stdin --yes`.
 */
import { defineCommand } from "citty";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { loadConfig, resolveConfigPath, writeCredential } from "../config/index.ts";
import { UsageError } from "../lib/errors.ts";
import { stringFlag } from "./_args.ts";

export const PROVIDERS = ["anthropic", "openai", "gemini", "ollama"] as const;
type ProviderName = (typeof PROVIDERS)[number];

export const DEFAULT_MODELS: Record<ProviderName, string> = {
  anthropic: "claude-sonnet-4-5",
  openai: "gpt-4o",
  gemini: "gemini-2.5-flash",
  ollama: "llama3.2",
};

/** The config file onboard writes: one default agent. */
export function onboardConfig(provider: ProviderName, model: string): string {
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
    "",
  ].join("\n");
}

const isProvider = (s: string): s is ProviderName => (PROVIDERS as readonly string[]).includes(s);

export default defineCommand({
  meta: { name: "onboard", description: "First-run setup: provider, API key, model → config and credential file" },
  args: {
    provider: { type: "string", description: `One of ${PROVIDERS.join(", ")}` },
    model: { type: "string", description: "Model name (default depends on the provider)" },
    "api-key-stdin": { type: "boolean", description: "Read the API key from stdin (for scripts)" },
    yes: { type: "boolean", description: "Do not ask; overwrite an existing config" },
    config: { type: "string", description: "Config file to write (default: <state>/config.toml)" },
  },
  async run({ args }) {
    const env = process.env;
    const home = loadConfig({ ...env, EXOCLAW_CONFIG: undefined }, {}).home;
    const file = resolveConfigPath(env, stringFlag("config", args.config)).path;
    const interactive = !args.yes;
    if (interactive && !process.stdin.isTTY) {
      throw new UsageError("onboard needs a terminal; for scripts use --provider P [--model M] [--api-key-stdin] --yes");
    }
    let provider = stringFlag("provider", args.provider);
    let model = stringFlag("model", args.model);
    let apiKey: string | undefined;
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
        const ok = await p.confirm({ message: `${file} exists. Replace it?`, initialValue: false });
        if (p.isCancel(ok) || !ok) stop(ok);
      }
      if (!provider) {
        const v = await p.select({ message: "Which model provider?", options: PROVIDERS.map((x) => ({ value: x, label: x })) });
        provider = p.isCancel(v) ? stop(v) : String(v);
      }
      if (provider !== "ollama" && apiKey === undefined) {
        const v = await p.password({ message: `${provider} API key (stored in ${home}/credentials/${provider}.key, mode 600)` });
        apiKey = p.isCancel(v) ? stop(v) : v;
      }
      if (!model && isProvider(provider)) {
        const v = await p.text({ message: "Model", initialValue: DEFAULT_MODELS[provider] });
        model = p.isCancel(v) ? stop(v) : v;
      }
    } else if (!provider) {
      throw new UsageError("--provider is required with --yes");
    }
    if (!provider || !isProvider(provider)) throw new UsageError(`--provider: expected one of ${PROVIDERS.join(", ")}, got "${provider ?? ""}"`);
    if (!interactive && existsSync(file) && !args.yes) throw new UsageError(`${file} exists; pass --yes to replace it`);
    model ||= DEFAULT_MODELS[provider];

    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
    writeFileSync(file, onboardConfig(provider, model), { mode: 0o600 });
    const keyPath = apiKey ? writeCredential(home, provider, apiKey) : null;
    const lines = [
      `wrote ${file} (agent "main": ${provider} ${model})`,
      keyPath ? `stored the API key in ${keyPath} (mode 600)` : provider === "ollama" ? "ollama needs no API key" : `no API key stored: set ${provider.toUpperCase()}_API_KEY or run \`exoclaw secret set ${provider}\``,
      "next: exoclaw gateway   (then: exoclaw chat)",
    ];
    if (interactive) (await import("@clack/prompts")).outro(lines.join("\n"));
    else process.stdout.write(lines.join("\n") + "\n");
  },
});
