/**
 * `exoclaw doctor [--json] [--online] [--config F]`: checks the operator's setup — config, keys,
 * state permissions, channels, plugins, public URL, exposure, service unit, disk, a running gateway
 * — and says for each what is wrong and the fix. Exit 0 when nothing fails (warnings allowed), 1
 * when something does.
 */
import { defineCommand } from "citty";
import { configArg, stringFlag } from "./_args.ts";
import { formatChecks, runDoctor } from "./_doctor.ts";

export default defineCommand({
  meta: {
    name: "doctor",
    description: "Check the setup (config, keys, permissions, channels, exposure…) and say how to fix what is wrong",
  },
  args: {
    ...configArg,
    json: { type: "boolean", description: "Print the checks as JSON: {checks:[{id,status,message,fix?}], ok}" },
    online: {
      type: "boolean",
      description: "Also ask each provider whether it takes its key, and the public URL whether it answers",
    },
  },
  async run({ args }) {
    const checks = await runDoctor({
      env: process.env,
      file: stringFlag("config", args.config),
      online: Boolean(args.online),
    });
    const ok = checks.every((c) => c.status !== "fail");
    if (args.json) process.stdout.write(JSON.stringify({ checks, ok }, null, 2) + "\n");
    else process.stdout.write(formatChecks(checks, process.stdout.isTTY === true && !process.env.NO_COLOR) + "\n");
    return ok ? 0 : 1;
  },
});
