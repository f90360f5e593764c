/**
 * `exoclaw service install [--user] [--print]`: a systemd unit that runs `exoclaw gateway`,
 * restarted on failure, with a file-descriptor limit high enough for many sockets. A system unit runs
 * the installed binary as a dynamic unprivileged user, sandboxed; a user unit runs this program as
 * the user. The token, if any, goes in an environment file (EXOCLAW_TOKEN=…, mode 600), not in the unit.
 */
import { defineCommand } from "citty";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfig } from "../config/index.ts";
import { ExoError, UsageError } from "../lib/errors.ts";
import { configArg, stringFlag } from "./_args.ts";

/** How this very program is started again: the compiled binary, or bun with main.ts. */
export function selfCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/")) return [process.execPath];
  return [process.execPath, Bun.main];
}

/** Where a system service's binary and state live (fixed, so the unit never points at a download folder). */
export const SYSTEM_BINARY = "/usr/local/bin/exoclaw";
export const SYSTEM_HOME = "/var/lib/exoclaw";
export const SYSTEM_ENV = "/etc/exoclaw/gateway.env";
/** Where `service install` writes the system unit, and the user unit (under $XDG_CONFIG_HOME or ~/.config). */
export const SYSTEM_UNIT = "/etc/systemd/system/exoclaw.service";
export const userUnitPath = (env: Readonly<Record<string, string | undefined>>): string => join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd/user/exoclaw.service");

/**
 * A user unit runs this program as the user, with their state directory. A system unit runs the
 * installed binary as a dynamic, unprivileged user with its own state directory and the usual
 * sandboxing (`systemd-analyze security` exposure about 1.3). JIT and WebAssembly need writable
 * executable memory, so MemoryDenyWriteExecute stays off.
 */
export function renderUnit(opts: { exec: string[]; home: string; configFile: string | null; user: boolean }): string {
  const q = (s: string) => (/[\s"\\]/.test(s) ? JSON.stringify(s) : s);
  const exec = [...(opts.user ? opts.exec : [SYSTEM_BINARY]), "gateway", ...(opts.configFile ? ["--config", opts.configFile] : [])].map(q).join(" ");
  const common = ["ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "RestartSec=2", "LimitNOFILE=65536", "UMask=0077", "NoNewPrivileges=yes", "PrivateTmp=yes", "LockPersonality=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes"];
  const service = opts.user
    ? [`Environment=EXOCLAW_HOME=${q(opts.home)}`, `EnvironmentFile=-${q(join(opts.home, "gateway.env"))}`, `ExecStart=${exec}`, ...common]
    : [
        "DynamicUser=yes",
        "StateDirectory=exoclaw",
        "StateDirectoryMode=0700",
        `Environment=EXOCLAW_HOME=${SYSTEM_HOME}`,
        `EnvironmentFile=-${SYSTEM_ENV}`,
        `ExecStart=${exec}`,
        ...common,
        "PrivateDevices=yes",
        "PrivateUsers=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=yes",
        "RemoveIPC=yes",
        "KeyringMode=private",
        "DevicePolicy=closed",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=no",
      ];
  return [
    "[Unit]",
    "Description=exoclaw gateway (WASM-sandboxed AI agent runtime)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...service,
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
    const user = Boolean(args.user);
    const unit = renderUnit({ exec: selfCommand(), home: config.home, configFile: stringFlag("config", args.config) ?? (user ? config.file : null), user });
    if (args.print) return void process.stdout.write(unit);
    if (user) {
      const path = userUnitPath(process.env);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, unit);
      process.stdout.write(
        `wrote ${path}\nnext: systemctl --user daemon-reload && systemctl --user enable --now exoclaw\n` +
          `a user service stops when you log out, unless lingering is on: loginctl enable-linger ${process.env.USER ?? "$USER"}\n` +
          `(a token, if you use one: EXOCLAW_TOKEN=… in ${join(config.home, "gateway.env")}, mode 600)\n`,
      );
      return;
    }
    if (process.getuid?.() !== 0) throw new ExoError("unauthorized", "a system service is written to /etc/systemd/system and installs /usr/local/bin/exoclaw: run it with sudo, or use --user");
    const exec = selfCommand();
    if (exec.length !== 1) {
      throw new UsageError(`a system service runs the compiled binary from ${SYSTEM_BINARY}: build it (npm run build -- --native) and run \`sudo ./dist/exoclaw-linux-x64 service install\`, or use --user`);
    }
    if (exec[0] !== SYSTEM_BINARY) {
      mkdirSync(dirname(SYSTEM_BINARY), { recursive: true });
      copyFileSync(exec[0]!, SYSTEM_BINARY);
      chmodSync(SYSTEM_BINARY, 0o755);
    }
    const path = SYSTEM_UNIT;
    writeFileSync(path, unit);
    process.stdout.write(
      `installed ${SYSTEM_BINARY} and wrote ${path}\nnext: systemctl daemon-reload && systemctl enable --now exoclaw\n` +
        `it runs as an unprivileged dynamic user with its state in ${SYSTEM_HOME} (config.toml, credentials/ go there);\n` +
        `a token, if you use one: EXOCLAW_TOKEN=… in ${SYSTEM_ENV}, mode 600\n`,
    );
  },
});

export default defineCommand({
  meta: { name: "service", description: "Run the gateway as a systemd service" },
  subCommands: { install },
});
