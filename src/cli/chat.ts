/**
 * `exoclaw chat [MESSAGE]`: talk to an agent through the running gateway, streaming its text and
 * tool activity to the terminal. Without MESSAGE it reads lines interactively; Ctrl-C during an
 * answer cancels that turn, Ctrl-D (end of input) quits. On a terminal, a spinner on stderr shows
 * while the model thinks. Interactively, a gateway restart is survived: see _link.ts.
 */
import { defineCommand } from "citty";
import { createInterface } from "node:readline";
import { loadConfig } from "../config/index.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { describeError, UnavailableError } from "../lib/errors.ts";
import { connectGateway, gatewayUrl, type GatewayClient } from "./_client.ts";
import { openLink } from "./_link.ts";
import { createSpinner, type Spinner } from "./_spinner.ts";

interface ChatEvent {
  id: number;
  event: string;
  data: unknown;
}

const TURN_TIMEOUT_MS = 15 * 60_000;
const out = (s: string) => process.stdout.write(s);

function preview(v: unknown, max = 200): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > max ? s.slice(0, max) + "…" : s;
}

/** One turn (events are printed by the notification handler); resolves with the stop reason. */
async function turn(
  client: GatewayClient,
  content: string,
  params: Record<string, string>,
  state: { current: number | null; spinner: Spinner },
): Promise<string> {
  state.spinner.start();
  try {
    const r = (await client.call("chat.send", { content, ...params }, TURN_TIMEOUT_MS)) as {
      stop_reason: string;
      text: string;
    };
    return r.stop_reason;
  } finally {
    state.spinner.stop();
    state.current = null;
  }
}

export default defineCommand({
  meta: { name: "chat", description: "Talk to an agent through the gateway (interactive without MESSAGE)" },
  args: {
    ...clientArgs,
    message: { type: "positional", description: "What to say; omit for an interactive session", required: false },
    agent: { type: "string", description: "Agent id (default: routed by bindings)" },
    peer: { type: "string", description: "Conversation name; the session is <agent>:ws:local:<peer>" },
  },
  async run({ args }) {
    const token = stringFlag("token", args.token);
    const config = loadConfig(process.env, {
      file: stringFlag("config", args.config),
      ...(token !== undefined && { token }),
    });
    const url = gatewayUrl(config, {
      url: stringFlag("url", args.url),
      port: parsePort(stringFlag("port", args.port)),
    });
    const agent = stringFlag("agent", args.agent);
    const peer = stringFlag("peer", args.peer);
    const params: Record<string, string> = { ...(agent && { agent }), ...(peer && { peer }) };
    const state = { current: null as number | null, atLineStart: true, spinner: createSpinner() };
    const onNotification = (method: string, p: unknown) => {
      if (method !== "chat.event") return;
      const e = p as ChatEvent;
      state.current = e.id;
      // Whatever arrives first ends the wait: the spinner's line is erased before anything is printed.
      state.spinner.stop();
      const line = (s: string) => {
        if (!state.atLineStart) out("\n");
        out(s + "\n");
        state.atLineStart = true;
      };
      switch (e.event) {
        case "text":
          out(String(e.data));
          state.atLineStart = String(e.data).endsWith("\n");
          break;
        case "tool_use": {
          const d = e.data as { name: string; input: unknown };
          line(`[tool ${d.name} ${preview(d.input)}]`);
          break;
        }
        case "tool_result": {
          const d = e.data as { content: string; is_error: boolean };
          line(`[${d.is_error ? "tool error" : "tool result"}: ${preview(d.content)}]`);
          state.spinner.start(); // the model thinks again over the result
          break;
        }
        case "error":
          if (!state.atLineStart) out("\n");
          process.stderr.write(`error: ${(e.data as { message: string }).message}\n`);
          state.atLineStart = true;
          break;
        case "done":
          if (!state.atLineStart) out("\n");
          state.atLineStart = true;
          break;
      }
    };

    if (args.message !== undefined) {
      const client = await connectGateway(url, config.gateway.token, 5000);
      client.onNotification(onNotification);
      try {
        const stop = await turn(client, String(args.message), params, state);
        return stop === "error" ? 1 : 0;
      } finally {
        client.close();
      }
    }

    // Interactive: the gateway may restart between lines; the link reconnects, and a line typed
    // meanwhile waits for it and is sent then.
    const link = await openLink({
      url,
      token: config.gateway.token,
      onNotification,
      say: (l) => void process.stderr.write(l + "\n"),
    });
    const rl = createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: process.stdin.isTTY === true,
    });
    try {
      let busy = false;
      rl.on("SIGINT", () => {
        // The running turn is known from its events' request id; a line waiting for a reconnect is given up.
        if (busy && state.current !== null)
          void link
            .ready()
            .then((c) => c.call("chat.cancel", { id: state.current }))
            .catch(() => {});
        else {
          if (busy) link.close();
          rl.close();
        }
      });
      if (process.stdin.isTTY) out(`connected to ${url} — type a message, Ctrl-D to quit\n`);
      rl.setPrompt("> ");
      if (process.stdin.isTTY) rl.prompt();
      for await (const line of rl) {
        const content = line.trim();
        if (content) {
          busy = true;
          let client: GatewayClient;
          try {
            client = await link.ready();
          } catch (e) {
            process.stderr.write(`not sent: ${preview(content, 60)} (${describeError(e)})\n`);
            return 1;
          }
          await turn(client, content, params, state).catch((e: Error) =>
            process.stderr.write(
              e instanceof UnavailableError && link.reconnecting
                ? `error: not answered: the gateway went away during this turn; send it again once it is back\n`
                : `error: ${e.message}\n`,
            ),
          );
          busy = false;
        }
        if (process.stdin.isTTY) rl.prompt();
      }
      return 0;
    } finally {
      rl.close();
      link.close();
    }
  },
});
