/**
 * The floor for the gateway bench: a bare Bun.serve answering /health and WebSocket pings, no
 * protocol layer. Compiled the way the release binary is (bun build --compile, bytecode, minify)
 * for cold start and RSS; the port is its last argument (`… gateway --port N` works as well).
 */
const port = Number(process.argv.at(-1));
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (new URL(req.url).pathname === "/health") return new Response("ok");
    return server.upgrade(req) ? undefined : new Response("no", { status: 400 });
  },
  websocket: {
    message(ws, msg) {
      const { id } = JSON.parse(String(msg)) as { id: number };
      ws.send(`{"jsonrpc":"2.0","id":${id},"result":"pong"}`);
    },
  },
});
