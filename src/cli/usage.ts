/** `exoclaw usage [--session KEY] [--agent A] [--json]`: tokens and cost today, this month, in all. */
import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../app.ts";
import { loadConfig } from "../config/index.ts";
import { UnavailableError } from "../lib/errors.ts";
import { periodStarts } from "../metering/index.ts";
import type { UsageTotals } from "../store/index.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl } from "./_client.ts";

interface UsageReport {
  today: UsageTotals;
  month: UsageTotals;
  all: UsageTotals;
  budgets: Record<string, number | undefined>;
}

const empty: UsageTotals = { calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_calls: 0 };

export function formatUsage(r: UsageReport): string {
  const line = (name: string, t: UsageTotals) =>
    `${name.padEnd(11)}${String(t.calls).padStart(7)} calls ${String(t.input_tokens).padStart(12)} in ${String(t.output_tokens).padStart(11)} out   $${t.cost_usd.toFixed(4)}${t.unpriced_calls ? ` (+${t.unpriced_calls} unpriced)` : ""}`;
  const budgets = Object.entries(r.budgets).filter(([, v]) => v !== undefined);
  return [
    line("today", r.today),
    line("this month", r.month),
    line("all time", r.all),
    budgets.length ? `budgets: ${budgets.map(([k, v]) => `${k} = ${v}`).join(", ")}` : "budgets: none (unlimited)",
  ].join("\n");
}

export default defineCommand({
  meta: { name: "usage", description: "Token usage and cost: today, this month, all time" },
  args: {
    ...clientArgs,
    session: { type: "string", description: "Only this session" },
    agent: { type: "string", description: "Only this agent" },
    json: { type: "boolean", description: "Print JSON" },
  },
  async run({ args }) {
    const token = stringFlag("token", args.token);
    const config = loadConfig(process.env, {
      file: stringFlag("config", args.config),
      ...(token !== undefined && { token }),
    });
    const session = stringFlag("session", args.session);
    const agent = stringFlag("agent", args.agent);
    const scope = { ...(session && { session }), ...(agent && { agent }) };
    const url = gatewayUrl(config, {
      url: stringFlag("url", args.url),
      port: parsePort(stringFlag("port", args.port)),
    });
    let report: UsageReport;
    try {
      const client = await connectGateway(url, config.gateway.token, 2000);
      try {
        report = (await client.call("usage.get", scope)) as UsageReport;
      } finally {
        client.close();
      }
    } catch (e) {
      if (!(e instanceof UnavailableError)) throw e;
      if (config.store.kind === "sqlite" && !existsSync(join(config.home, "exoclaw.db"))) {
        report = { today: empty, month: empty, all: empty, budgets: config.budgets };
      } else {
        const store = await openStore(config);
        try {
          const { day, month } = periodStarts(Date.now());
          report = {
            today: await store.sumUsage({ ...scope, since: day }),
            month: await store.sumUsage({ ...scope, since: month }),
            all: await store.sumUsage(scope),
            budgets: config.budgets,
          };
        } finally {
          await store.close();
        }
      }
    }
    process.stdout.write((args.json ? JSON.stringify(report, null, 2) : formatUsage(report)) + "\n");
  },
});
