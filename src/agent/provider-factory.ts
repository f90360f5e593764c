/**
 * Builds the stream function of an agent from its config: its provider over HTTP with retries,
 * then its `fallbacks` in order. API keys are resolved per SPEC §1 at call time, so a key added
 * with `exoclaw secret set` works without a restart — and only for their own endpoint: an agent
 * with a custom `base_url` sends only its own key there (resolveAgentKey). Fallback steps use their
 * provider's default endpoint and key.
 *
 * Before each step's request the stream yields `{type:"model"}` naming the step's provider and
 * model; the request is made only when the consumer pulls the next event, so the metering wrapper
 * can reserve at that model's price first (and stop the step by not pulling).
 */
import { type AgentConfig, resolveApiKey } from "../config/index.ts";
import { API_KEY_ENV, resolveAgentKey } from "../config/api-keys.ts";
import type { Logger } from "../lib/log.ts";
import type { StreamFn } from "./loop.ts";
import { withIdleTimeout } from "./idle-timeout.ts";
import { type RetryOptions, withRetries } from "./retry.ts";
import { ProviderError } from "./provider-error.ts";
import type { Provider, ProviderId, ProviderOptions, StreamEvent } from "./types.ts";

export interface ProviderContext {
  home: string;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  fetch?: typeof fetch;
  retry?: RetryOptions;
}

type Factory = (opts: ProviderOptions) => Provider;

const factories = new Map<ProviderId, Promise<Factory>>();

/** Wire-API constructors, loaded on first use so the gateway's cold start does not pay for them. */
function factoryFor(id: ProviderId): Promise<Factory> {
  let f = factories.get(id);
  if (!f) factories.set(id, (f = loadFactory(id)));
  return f;
}

async function loadFactory(id: ProviderId): Promise<Factory> {
  switch (id) {
    case "anthropic":
      return (await import("./providers/anthropic.ts")).createAnthropicProvider;
    case "openai":
      return (await import("./providers/openai-chat.ts")).createOpenAIChatProvider;
    case "gemini":
      return (await import("./providers/gemini.ts")).createGeminiProvider;
    case "ollama":
      return (await import("./providers/ollama.ts")).createOllamaProvider;
    default: {
      const never: never = id;
      throw new ProviderError(never, `unknown provider ${String(never)}`);
    }
  }
}

export function providerStream(agent: AgentConfig, ctx: ProviderContext): StreamFn {
  return async function* (req, signal): AsyncIterable<StreamEvent> {
    const chain = [{ provider: agent.provider, model: agent.model, base_url: agent.base_url }, ...agent.fallbacks.map((f) => ({ ...f, base_url: "" }))];
    let last: ProviderError | undefined;
    for (const [i, step] of chain.entries()) {
      // The agent's own step: its own endpoint's key. A fallback goes to its provider's default
      // endpoint: that provider's key (the agent's api_key too, unless it was meant for a custom base_url).
      const { key, source } =
        i === 0 ? resolveAgentKey(ctx.env, ctx.home, agent) : resolveApiKey(ctx.env, ctx.home, step.provider, step.provider === agent.provider && agent.base_url === "" ? agent.api_key : undefined);
      if (source === "config") ctx.log.warn("api_key read from the config file; prefer `exoclaw secret set` or an environment variable", { provider: step.provider });
      // The provider's own endpoint refuses a call without a key: say what to do instead of making
      // it (and, with no network, instead of a DNS error). A custom base_url may need none.
      if (key === null && step.provider !== "ollama" && step.base_url === "") {
        const env = API_KEY_ENV[step.provider];
        last = new ProviderError(step.provider, `${step.provider}: no API key — run \`exoclaw onboard\` or \`exoclaw secret set ${step.provider}\`${env ? ` (or set ${env})` : ""}`, { status: 401 });
        continue;
      }
      let provider: Provider;
      try {
        const make = await factoryFor(step.provider);
        const quietLimited = withIdleTimeout(ctx.fetch ?? fetch, agent.idle_timeout_ms);
        provider = withRetries(make({ apiKey: key, ...(step.base_url && { baseUrl: step.base_url }), fetch: quietLimited }), ctx.retry);
      } catch (e) {
        last = e instanceof ProviderError ? e : new ProviderError(step.provider, `${step.provider}: ${String(e)}`);
        continue;
      }
      yield { type: "model", provider: step.provider, model: step.model };
      let produced = false;
      let failure: ProviderError | undefined;
      for await (const ev of provider.stream({ ...req, model: step.model }, { signal })) {
        if (ev.type === "error") failure = ev.error;
        else {
          if (ev.type === "text" || ev.type === "tool_call") produced = true;
          yield ev;
        }
      }
      if (!failure) return;
      last = failure;
      if (produced || failure.reason === "aborted" || signal.aborted) break;
    }
    yield { type: "error", error: last ?? new ProviderError(agent.provider, `${agent.provider}: no provider answered`) };
  };
}
