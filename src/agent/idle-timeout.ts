/**
 * A model call that stops sending holds its turn slot, and a channel turn has no client to cancel
 * it: `withIdleTimeout` wraps fetch so that no response headers, or no body bytes, for `ms` aborts
 * the request. The provider then ends its stream with a retryable ProviderError (retried, then the
 * fallbacks), whose message names the idle timeout. The caller's own signal still aborts as before.
 */

/** The abort reason when the upstream went quiet. */
export class IdleTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no data from the model for ${ms} ms (idle_timeout_ms)`);
    this.name = "IdleTimeoutError";
  }
}

export function withIdleTimeout(inner: typeof fetch, ms: number): typeof fetch {
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const controller = new AbortController();
    const outer = init?.signal;
    const onOuter = () => controller.abort(outer?.reason);
    if (outer?.aborted) onOuter();
    else outer?.addEventListener("abort", onOuter, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuter);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new IdleTimeoutError(ms)), ms);
    };
    arm();
    let res: Response;
    try {
      res = await inner(input, { ...init, signal: controller.signal });
    } catch (e) {
      stop();
      throw controller.signal.reason instanceof IdleTimeoutError ? controller.signal.reason : e;
    }
    if (!res.body) {
      stop();
      return res;
    }
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        arm();
        try {
          const { done, value } = await reader.read();
          if (done) {
            stop();
            ctl.close();
          } else ctl.enqueue(value);
        } catch (e) {
          stop();
          ctl.error(controller.signal.reason instanceof IdleTimeoutError ? controller.signal.reason : e);
        }
      },
      cancel(reason) {
        stop();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return wrapped as typeof fetch;
}

/** Whether `e`, or an error in its `cause` chain, is an idle timeout (for the turn metric). */
export function isIdleTimeout(e: unknown): boolean {
  for (let cur = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++)
    if (cur instanceof IdleTimeoutError) return true;
  return false;
}
