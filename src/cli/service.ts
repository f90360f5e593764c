/**
 * `exoclaw service install [--user] [--print] | uninstall [--user] | status [--user]`: a systemd unit
 * that runs `exoclaw gateway`, restarted on failure, with a file-descriptor limit high enough for many
 * sockets. A system unit runs the installed binary as a dynamic unprivileged user, sandboxed; a user
 * unit runs this program as the user. The token, if any, goes in an environment file
 * (EXOCLAW_TOKEN=…, mode 600), not in the unit.
 */
import { defineCommand } from "citty";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfig, resolveHome } from "../config/index.ts";
import { ExoError, UsageError } from "../lib/errors.ts";
import { WORKER_STOP_MS } from "../gateway/supervisor.ts";
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
export const userUnitPath = (env: Readonly<Record<string, string | undefined>>): string =>
  join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd/user/exoclaw.service");

/**
 * A user unit runs this program as the user, with their state directory. A system unit runs the
 * installed binary as a dynamic, unprivileged user with its own state directory and the usual
 * sandboxing (`systemd-analyze security` exposure about 1.3). JIT and WebAssembly need writable
 * executable memory, so MemoryDenyWriteExecute stays off.
 */
export function renderUnit(opts: { exec: string[]; home: string; configFile: string | null; user: boolean }): string {
  const q = (s: string) => (/[\s"\\]/.test(s) ? JSON.stringify(s) : s);
  const exec = [
    ...(opts.user ? opts.exec : [SYSTEM_BINARY]),
    "gateway",
    ...(opts.configFile ? ["--config", opts.configFile] : []),
  ]
    .map(q)
    .join(" ");
  // KillMode=mixed: SIGTERM goes to the gateway (or the supervisor of `--workers N`, which drains its
  // workers) alone; whatever is left when the stop timeout — above the workers' drain — ends is killed.
  const stop = [`KillMode=mixed`, `TimeoutStopSec=${Math.ceil(WORKER_STOP_MS / 1000) + 5}`];
  const common = [
    "ExecReload=/bin/kill -HUP $MAINPID",
    ...stop,
    "Restart=on-failure",
    "RestartSec=2",
    "LimitNOFILE=65536",
    "UMask=0077",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
  ];
  const service = opts.user
    ? [
        `Environment=EXOCLAW_HOME=${q(opts.home)}`,
        `EnvironmentFile=-${q(join(opts.home, "gateway.env"))}`,
        `ExecStart=${exec}`,
        ...common,
      ]
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
    const unit = renderUnit({
      exec: selfCommand(),
      home: config.home,
      configFile: stringFlag("config", args.config) ?? (user ? config.file : null),
      user,
    });
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
    if (process.getuid?.() !== 0)
      throw new ExoError(
        "unauthorized",
        "a system service is written to /etc/systemd/system and installs /usr/local/bin/exoclaw: run it with sudo, or use --user",
      );
    const exec = selfCommand();
    if (exec.length !== 1) {
      throw new UsageError(
        `a system service runs the compiled binary from ${SYSTEM_BINARY}: build it (npm run build -- --native) and run \`sudo ./dist/exoclaw-linux-x64 service install\`, or use --user`,
      );
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

/** What uninstall and status touch outside themselves; tests pass their own. */
export interface ServiceSystem {
  /** Runs a command (systemctl); never throws: a missing program is exit code 127. */
  run(argv: string[]): { code: number; stdout: string; stderr: string };
  isRoot: boolean;
  /** The unit file's path. */
  unitPath(user: boolean): string;
  /** The state directory, which uninstall keeps. */
  home(user: boolean): string;
}

function runCommand(argv: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    return { code: p.exitCode ?? 1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  } catch {
    return { code: 127, stdout: "", stderr: `${argv[0]} not found` };
  }
}

function realSystem(configHome: string): ServiceSystem {
  return {
    run: runCommand,
    isRoot: process.getuid?.() === 0,
    unitPath: (user) => (user ? userUnitPath(process.env) : SYSTEM_UNIT),
    home: (user) => (user ? configHome : SYSTEM_HOME),
  };
}

const shellQuote = (p: string) => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);

/** The EXOCLAW_HOME a unit runs with (as renderUnit writes it), or null. */
function stateDirOf(unit: string): string | null {
  const v = /^Environment=EXOCLAW_HOME=(.+)$/m.exec(unit)?.[1];
  if (v === undefined) return null;
  try {
    return v.startsWith('"') ? (JSON.parse(v) as string) : v;
  } catch {
    return null;
  }
}

const systemctl = (user: boolean, ...args: string[]) => ["systemctl", ...(user ? ["--user"] : []), ...args];
const firstLine = (s: string) => s.trim().split("\n")[0] ?? "";

/**
 * Stops and disables the unit, removes its file and reloads systemd; the state directory (and for a
 * system unit the binary and the token file) stay. Returns what to print. Throws ExoError when the
 * unit is not installed, or when a system unit is removed without root.
 */
export function uninstallService(sys: ServiceSystem, user: boolean): string {
  const path = sys.unitPath(user);
  if (!user && !sys.isRoot)
    throw new ExoError(
      "unauthorized",
      `the system service's unit is ${path}: run it with sudo, or use --user for a user service`,
    );
  if (!existsSync(path))
    throw new ExoError(
      "not_found",
      `no exoclaw service is installed (no ${path})${user ? "" : "; for a user service: exoclaw service uninstall --user"}`,
    );
  const home = stateDirOf(readFileSync(path, "utf8")) ?? sys.home(user);
  const lines: string[] = [];
  const stop = sys.run(systemctl(user, "disable", "--now", "exoclaw"));
  if (stop.code === 0) lines.push("stopped and disabled exoclaw");
  else
    lines.push(
      `warning: could not stop and disable exoclaw (${firstLine(stop.stderr) || `systemctl exit ${stop.code}`}); removing the unit anyway`,
    );
  rmSync(path, { force: true });
  lines.push(`removed ${path}`);
  const reload = sys.run(systemctl(user, "daemon-reload"));
  if (reload.code !== 0)
    lines.push(
      `warning: systemctl${user ? " --user" : ""} daemon-reload failed (${firstLine(reload.stderr) || `exit ${reload.code}`}): run it yourself`,
    );
  lines.push(
    `kept the state directory ${home} (config, credentials, database); to delete it too: ${user ? "" : "sudo "}rm -r ${shellQuote(home)}`,
  );
  if (!user)
    lines.push(
      `kept ${SYSTEM_BINARY} and ${SYSTEM_ENV} (if any); remove them with sudo rm ${SYSTEM_BINARY} ${SYSTEM_ENV}`,
    );
  return lines.join("\n") + "\n";
}

/**
 * Whether the unit is installed, and what systemd says of it (`is-active`, `is-enabled`). Returns what
 * to print; throws ExoError when no unit file is installed. Needs no root: both questions are read-only.
 */
export function serviceStatus(sys: ServiceSystem, user: boolean): string {
  const path = sys.unitPath(user);
  if (!existsSync(path)) {
    throw new ExoError(
      "not_found",
      `no exoclaw service is installed (no ${path}): exoclaw service install${user ? " --user" : ""}${user ? "" : " (or --user for a user service)"}`,
    );
  }
  const ask = (what: string) => {
    const r = sys.run(systemctl(user, what, "exoclaw"));
    return firstLine(r.stdout) || firstLine(r.stderr) || `unknown (systemctl exit ${r.code})`;
  };
  return [
    `unit: ${path}`,
    `active: ${ask("is-active")}`,
    `enabled: ${ask("is-enabled")}`,
    `logs: journalctl ${user ? "--user " : ""}-u exoclaw -n 20`,
    "",
  ].join("\n");
}

const userArg = {
  user: { type: "boolean", description: "The user unit (~/.config/systemd/user) instead of the system one" },
} as const;

const uninstall = defineCommand({
  meta: { name: "uninstall", description: "Stop, disable and remove the systemd unit (the state directory is kept)" },
  args: userArg,
  run({ args }) {
    process.stdout.write(uninstallService(realSystem(resolveHome(process.env)), Boolean(args.user)));
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Whether the systemd unit is installed, active and enabled" },
  args: userArg,
  run({ args }) {
    process.stdout.write(serviceStatus(realSystem(resolveHome(process.env)), Boolean(args.user)));
  },
});

export default defineCommand({
  meta: { name: "service", description: "Run the gateway as a systemd service" },
  subCommands: { install, uninstall, status },
});
