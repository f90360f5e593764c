/**
 * `exoclaw service install [--user] [--print]`: a systemd unit that runs `exoclaw gateway`,
 * restarted on failure, with the usual hardening and a file-descriptor limit high enough for many
 * sockets. The token, if any, goes in `<state>/gateway.env` (EXOCLAW_TOKEN=…, mode 600), not in the unit.
 */
import { defineCommand } from "citty";
import { mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfig } from "../config/index.ts";
import { configArg, stringFlag } from "./_args.ts";

/** How this very program is started again: the compiled binary, or bun with main.ts. */
export function selfCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/")) return [process.execPath];
  return [process.execPath, Bun.main];
}

export function renderUnit(opts: { exec: string[]; home: string; configFile: string | null; user: boolean }): string {
  const q = (s: string) => (/[\s"\\]/.test(s) ? JSON.stringify(s) : s);
  const exec = [...opts.exec, "gateway", ...(opts.configFile ? ["--config", opts.configFile] : [])].map(q).join(" ");
  return [
    "[Unit]",
    "Description=exoclaw gateway (WASM-sandboxed AI agent runtime)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `Environment=EXOCLAW_HOME=${q(opts.home)}`,
    `EnvironmentFile=-${q(join(opts.home, "gateway.env"))}`,
    `ExecStart=${exec}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "RestartSec=2",
    "LimitNOFILE=65536",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    ...(opts.user ? [] : ["ProtectSystem=strict", `ReadWritePaths=${q(opts.home)}`]),
    "",
    "[Install]",
    `WantedBy=${opts.user ? "default.target" : "multi-user.target"}`,
    "",
  ].join("\n");
}

const install = defineCommand({
  meta: { name: "install", description: "Write a systemd unit for the gateway (or print it)" },
  args: {
    ...configArg,
    user: { type: "boolean", description: "A user unit (~/.config/systemd/user) instead of a system one" },
    print: { type: "boolean", description: "Print the unit instead of writing it" },
  },
  run({ args }) {
    const config = loadConfig(process.env, { file: stringFlag("config", args.config) });
    const unit = renderUnit({ exec: selfCommand(), home: config.home, configFile: config.file, user: Boolean(args.user) });
    if (args.print) return void process.stdout.write(unit);
    const path = args.user ? join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd/user/exoclaw.service") : "/etc/systemd/system/exoclaw.service";
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, unit);
    const ctl = args.user ? "systemctl --user" : "systemctl";
    process.stdout.write(`wrote ${path}\nnext: ${ctl} daemon-reload && ${ctl} enable --now exoclaw\n(a token, if you use one: EXOCLAW_TOKEN=… in ${join(config.home, "gateway.env")}, mode 600)\n`);
  },
});

export default defineCommand({
  meta: { name: "service", description: "Run the gateway as a systemd service" },
  subCommands: { install },
});
