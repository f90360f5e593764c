import { defineCommand } from "citty";
import { loadConfig, maskConfig } from "../config/index.ts";
import { configArg, stringFlag } from "./_args.ts";

const check = defineCommand({
  meta: { name: "check", description: "Validate the config and print the effective config, secrets masked" },
  args: { ...configArg, json: { type: "boolean", description: "Print only the effective config as JSON" } },
  run({ args }) {
    const config = loadConfig(process.env, { file: stringFlag("config", args.config) });
    const effective = JSON.stringify(maskConfig(config), null, 2);
    if (args.json) process.stdout.write(effective + "\n");
    else process.stdout.write(`config ok: ${config.file ?? "no config file, using defaults"}\n${effective}\n`);
    return 0;
  },
});

export default defineCommand({
  meta: { name: "config", description: "Inspect the configuration" },
  subCommands: { check },
});
