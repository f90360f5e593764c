/**
 * A stand-in for "the internet" on loopback: counts every request and echoes back what it got,
 * so a test can prove a request never left (count 0) or see exactly what the host sent.
 */
export interface OutsideServer extends AsyncDisposable {
  url: string;
  port: number;
  requests: { method: string; path: string; authorization: string | null }[];
}

export function startOutside(): OutsideServer {
  const requests: OutsideServer["requests"] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const u = new URL(req.url);
      const authorization = req.headers.get("authorization");
      requests.push({ method: req.method, path: u.pathname, authorization });
      if (u.pathname === "/big") return new Response("y".repeat(3 * 1024 * 1024));
      if (u.pathname === "/slow") return Bun.sleep(5000).then(() => new Response("late"));
      return Response.json({ path: u.pathname, authorization });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    requests,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
    },
  };
}
