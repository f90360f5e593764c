/** `config.reload` (operator) and `agent.list` (SPEC §5). */
import type { AgentConfig } from "../config/index.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";

export interface ConfigFacts {
  reload(): { file: string | null; bindings: number; agents: string[] };
  agents(): readonly AgentConfig[];
  defaultAgent(): string;
}

export function configMethods(facts: ConfigFacts): Map<string, Method<never>> {
  return new Map([
    ["config.reload", defineMethod({ operator: true, handle: () => facts.reload() })],
    [
      "agent.list",
      defineMethod({
        handle: () => ({
          agents: facts.agents().map((a) => ({
            id: a.id,
            provider: a.provider,
            model: a.model,
            default: a.id === facts.defaultAgent(),
            tools: a.tools,
          })),
        }),
      }),
    ],
  ]);
}
