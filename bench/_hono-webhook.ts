/**
 * The floor for the webhooks bench: a bare Hono POST handler (parse the JSON body, answer 200 with
 * `accepted: 1`), no signature check, sandbox or store. Run by bench/webhooks.ts as its own process
 * (`bun bench/_hono-webhook.ts <port>`): the same Bun runtime the compiled gateway carries.
 */
import { Hono } from "hono";

const app = new Hono();
app.post("/webhook/:channel", async (c) => {
  const body: unknown = await c.req.json();
  return c.json({ ok: body !== null, accepted: 1 });
});
app.get("/health", (c) => c.text("ok"));
Bun.serve({ hostname: "127.0.0.1", port: Number(process.argv.at(-1)), fetch: app.fetch });
