/** `exoclaw secret set NAME`: stores a credential (read from stdin) as <state>/credentials/NAME.key, mode 600. */
import { defineCommand } from "citty";
import { loadConfig, writeCredential } from "../config/index.ts";
import { UsageError } from "../lib/errors.ts";
import { configArg, stringFlag } from "./_args.ts";

const set = defineCommand({
  meta: {
    name: "set",
    description: "Store a credential read from stdin (e.g. `exoclaw secret set telegram_bot_token < token.txt`)",
  },
  args: { ...configArg, name: { type: "positional", description: "Credential name, [a-z0-9_-]+", required: true } },
  async run({ args }) {
    const config = loadConfig(process.env, { file: stringFlag("config", args.config) });
    const name = String(args.name);
    if (!/^[a-z0-9_-]+$/.test(name)) throw new UsageError(`secret name "${name}" must match [a-z0-9_-]+`);
    // On a terminal: a prompt with hidden input (never echoed, never in the shell's history).
    let value: string;
    if (process.stdin.isTTY) {
      const p = await import("@clack/prompts");
      const v = await p.password({ message: `Value for ${name} (input hidden)` });
      if (p.isCancel(v)) throw new UsageError("cancelled; nothing was stored");
      value = v.trim();
    } else value = (await new Response(Bun.stdin.stream()).text()).replace(/\r?\n$/, "");
    if (value === "")
      throw new UsageError(process.stdin.isTTY ? "no value given; nothing was stored" : "no value on stdin");
    const path = writeCredential(config.home, name, value);
    process.stdout.write(`stored ${name} in ${path} (mode 600)\n`);
  },
});

export default defineCommand({
  meta: { name: "secret", description: "Manage credentials the host injects for plugins and providers" },
  subCommands: { set },
});
