import { defineCommand } from "citty";
import { type Config, loadConfig, maskConfig, readCredential } from "../config/index.ts";
import { checkChannelSecrets } from "../channels/index.ts";
import { configArg, stringFlag } from "./_args.ts";

/**
 * The gateway token is never a config key: it comes from `--token` on `exoclaw gateway` or from
 * EXOCLAW_TOKEN. This command sees only the environment, so it says which of the two it can vouch for.
 */
function tokenPosture(config: Config): string {
  if (config.gateway.token) return "from EXOCLAW_TOKEN";
  return "none in EXOCLAW_TOKEN (exoclaw gateway --token T sets one; without a token only loopback clients are answered and a non-loopback bind refuses to start)";
}

const check = defineCommand({
  meta: {
    name: "check",
    description:
      "Validate the config (and the credentials its channels name) and print the effective config, secrets masked",
  },
  args: { ...configArg, json: { type: "boolean", description: "Print only the effective config as JSON" } },
  run({ args }) {
    const config = loadConfig(process.env, { file: stringFlag("config", args.config) });
    // The gateway refuses to start on these, so the check does too.
    checkChannelSecrets(config, (name) => readCredential(config.home, name));
    const masked = maskConfig(config);
    if (args.json)
      process.stdout.write(
        JSON.stringify({ ...masked, auth: { token: config.gateway.token ? "EXOCLAW_TOKEN" : "none" } }, null, 2) + "\n",
      );
    else
      process.stdout.write(
        `config ok: ${config.file ?? "no config file, using defaults"}\ntoken: ${tokenPosture(config)}\n${JSON.stringify(masked, null, 2)}\n`,
      );
    return 0;
  },
});

export default defineCommand({
  meta: { name: "config", description: "Inspect the configuration" },
  subCommands: { check },
});
