/** Baseline for the ping bench: a bare Bun WebSocket server answering pings, no protocol layer. */
const port = Number(process.argv[2]);
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
