/** `usage.get` (SPEC §5): token and USD totals for a session, an agent, or everything, per period. */
import * as v from "valibot";
import type { ConfigFile } from "../config/index.ts";
import { periodStarts } from "../metering/index.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";
import type { UsageLedger } from "../store/index.ts";

export const UsageParams = v.strictObject({
  session: v.optional(v.pipe(v.string(), v.minLength(1))),
  agent: v.optional(v.pipe(v.string(), v.minLength(1))),
});

export function usageMethods(store: UsageLedger, budgets: () => ConfigFile["budgets"]): Map<string, Method<never>> {
  return new Map([
    [
      "usage.get",
      defineMethod({
        params: UsageParams,
        async handle(p) {
          const scope = { ...(p.session && { session: p.session }), ...(p.agent && { agent: p.agent }) };
          const { day, month } = periodStarts(Date.now());
          const [today, thisMonth, all] = await Promise.all([
            store.sumUsage({ ...scope, since: day }),
            store.sumUsage({ ...scope, since: month }),
            store.sumUsage(scope),
          ]);
          return { ...scope, today, month: thisMonth, all, budgets: budgets() };
        },
      }),
    ],
  ]);
}
