/**
 * A slow model for load tests: every call waits until the test lets it answer (one call, or all from
 * now on), and the fake counts how many calls it is serving at once. No timers: a test waits for what
 * it can observe (`waitFor`).
 */
import type { StreamFn } from "../../src/agent/loop.ts";
import { ProviderError } from "../../src/agent/provider-error.ts";
import type { ChatRequest } from "../../src/agent/types.ts";

export interface GatedCall {
  /** The last user text of the request. */
  text: string;
  release(): void;
}

export interface GatedModel {
  stream: StreamFn;
  /** Calls waiting to be let through, oldest first. */
  waiting: GatedCall[];
  /** Every call's user text, in the order the calls arrived. */
  seen: string[];
  /** Calls being served now, and the most ever served at once. */
  readonly current: number;
  readonly peak: number;
  /** Lets every waiting call and every later one answer at once. */
  open(): void;
}

export const lastUserText = (req: ChatRequest): string => {
  const m = [...req.messages].reverse().find((x) => x.role === "user");
  return (m?.parts[0] as { text?: string } | undefined)?.text ?? "";
};

/** Answers `reply:<text>` once let through; a cancelled call ends as the providers end it (aborted). */
export function gatedModel(): GatedModel {
  let opened = false;
  let current = 0;
  let peak = 0;
  const waiting: GatedCall[] = [];
  const seen: string[] = [];
  const stream: StreamFn = async function* (req, signal) {
    const text = lastUserText(req);
    seen.push(text);
    current++;
    peak = Math.max(peak, current);
    try {
      if (!opened) {
        await new Promise<void>((resolve) => {
          const call: GatedCall = { text, release: resolve };
          waiting.push(call);
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
      if (signal.aborted) {
        yield {
          type: "error",
          error: new ProviderError("anthropic", "anthropic: request aborted", { reason: "aborted" }),
        };
        return;
      }
      yield { type: "text", text: `reply:${text}` };
      yield { type: "usage", input_tokens: 3, output_tokens: 2 };
      yield { type: "done", stop_reason: "end_turn" };
    } finally {
      current--;
    }
  };
  return {
    stream,
    waiting,
    seen,
    get current() {
      return current;
    },
    get peak() {
      return peak;
    },
    open() {
      opened = true;
      for (const c of waiting.splice(0)) c.release();
    },
  };
}

/** Polls `cond` until it holds; fails with `what` after `ms` (a deadline, not a timing assertion). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Lets the oldest waiting call answer; resolves with its text once there is one. */
export async function releaseNext(model: GatedModel, what = "a model call"): Promise<string> {
  await waitFor(() => model.waiting.length > 0, what);
  const call = model.waiting.shift()!;
  call.release();
  return call.text;
}
