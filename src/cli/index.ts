/** The root command; subcommands load lazily so `exoclaw --version` stays fast. */
import { defineCommand } from "citty";
import { VERSION } from "../lib/version.ts";

export const root = defineCommand({
  meta: {
    name: "exoclaw",
    version: VERSION,
    description: "Secure, WASM-sandboxed AI agent runtime and messaging gateway",
  },
  subCommands: {
    gateway: () => import("./gateway.ts").then((m) => m.default),
    onboard: () => import("./onboard.ts").then((m) => m.default),
    status: () => import("./status.ts").then((m) => m.default),
    config: () => import("./config.ts").then((m) => m.default),
    sessions: () => import("./sessions.ts").then((m) => m.default),
    chat: () => import("./chat.ts").then((m) => m.default),
    usage: () => import("./usage.ts").then((m) => m.default),
    plugin: () => import("./plugin.ts").then((m) => m.default),
    secret: () => import("./secret.ts").then((m) => m.default),
    pairing: () => import("./pairing.ts").then((m) => m.default),
    approvals: () => import("./approvals.ts").then((m) => m.default),
    inbox: () => import("./inbox.ts").then((m) => m.default),
    service: () => import("./service.ts").then((m) => m.default),
    doctor: () => import("./doctor.ts").then((m) => m.default),
    channel: () => import("./channel.ts").then((m) => m.default),
    mcp: () => import("./mcp.ts").then((m) => m.default),
  },
});
