/**
 * A request that a fake platform API keeps open until the test answers it: a slow or hanging API
 * without a sleep. The test learns when the request arrived, answers it when it has seen what it
 * waits for, and can tell whether the client gave up on it (closed the connection) first.
 */

export interface HeldRequest {
  /** For the fake's fetch handler: the response to `req`, given once the test answers. */
  hold(req: Request): Promise<Response>;
  /** Resolves when the request arrives, with the function that answers it. */
  arrived: Promise<(r: Response) => void>;
  /** Whether the client abandoned the request before it was answered. */
  readonly abandoned: boolean;
}

export function heldRequest(): HeldRequest {
  let arrive: (answer: (r: Response) => void) => void = () => {};
  const arrived = new Promise<(r: Response) => void>((resolve) => (arrive = resolve));
  let abandoned = false;
  return {
    hold: (req) =>
      new Promise<Response>((answer) => {
        req.signal.addEventListener("abort", () => (abandoned = true));
        arrive(answer);
      }),
    arrived,
    get abandoned() {
      return abandoned;
    },
  };
}
