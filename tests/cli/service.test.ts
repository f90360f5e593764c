import { expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderUnit, type ServiceSystem, serviceStatus, uninstallService } from "../../src/cli/service.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

test("service install --print: a system unit that runs the installed binary as a dynamic unprivileged user, sandboxed", async () => {
  using home = tempDir();
  const r = await runExoclaw(["service", "install", "--print"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(0);
  const unit = r.stdout;
  expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/exoclaw gateway$/m);
  expect(unit).toContain("Environment=EXOCLAW_HOME=/var/lib/exoclaw");
  for (const d of [
    "DynamicUser=yes",
    "StateDirectory=exoclaw",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateDevices=yes",
    "CapabilityBoundingSet=",
    "SystemCallFilter=@system-service",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "UMask=0077",
    "Restart=on-failure",
    "LimitNOFILE=65536",
    "KillMode=mixed",
    "TimeoutStopSec=20",
    "WantedBy=multi-user.target",
  ]) {
    expect(unit.split("\n")).toContain(d);
  }
  // The JIT and WebAssembly need writable executable memory.
  expect(unit).toContain("MemoryDenyWriteExecute=no");
  expect(unit).not.toContain(home.path);
});

test("systemd-analyze rates the system unit's exposure at or below 2.5", async () => {
  const analyze = Bun.which("systemd-analyze");
  if (!analyze) {
    // Debian's systemd provides it; without it the directives above are what is checked.
    expect(renderUnit({ exec: ["/x"], home: "/h", configFile: null, user: false })).toContain("DynamicUser=yes");
    return;
  }
  using dir = tempDir();
  const file = dir.file("exoclaw.service", renderUnit({ exec: ["/x"], home: "/h", configFile: null, user: false }));
  const p = Bun.spawnSync([analyze, "security", "--offline=true", "--no-pager", file], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = p.stdout.toString() + p.stderr.toString();
  const level = Number(/Overall exposure level for exoclaw\.service: ([\d.]+)/.exec(out)?.[1]);
  expect(level).toBeLessThanOrEqual(2.5);
});

test("a system service needs the compiled binary: from the source tree it says how, and writes nothing", async () => {
  using home = tempDir();
  const r = await runExoclaw(["service", "install"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("a system service runs the compiled binary from /usr/local/bin/exoclaw");
});

test("service install --user writes the unit under XDG_CONFIG_HOME", async () => {
  using home = tempDir();
  const xdg = join(home.path, "xdg");
  const r = await runExoclaw(["service", "install", "--user"], { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: xdg });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("systemctl --user daemon-reload && systemctl --user enable --now exoclaw");
  expect(r.stdout).toContain("loginctl enable-linger");
  const unit = await Bun.file(join(xdg, "systemd/user/exoclaw.service")).text();
  expect(unit).toContain("WantedBy=default.target");
  expect(unit).not.toContain("ProtectSystem");
});

test("paths with spaces are quoted; an explicit config is passed on", () => {
  const unit = renderUnit({
    exec: ["/opt/my apps/exoclaw"],
    home: "/var/lib/exo claw",
    configFile: "/etc/exoclaw.toml",
    user: true,
  });
  expect(unit).toContain('ExecStart="/opt/my apps/exoclaw" gateway --config /etc/exoclaw.toml');
  expect(unit).toContain('Environment=EXOCLAW_HOME="/var/lib/exo claw"');
});

/**
 * A stand-in `systemctl` first on PATH: it records its arguments and answers is-active / is-enabled
 * the way systemd does for a running, enabled unit. The real one never sees these tests.
 */
function fakeSystemctl(
  dir: string,
  answers: { active?: string; enabled?: string } = {},
): { env: Record<string, string>; calls: () => string[] } {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const log = join(dir, "systemctl.log");
  writeFileSync(
    join(bin, "systemctl"),
    `#!/bin/sh\necho "$*" >> "${log}"\ncase "$*" in\n  *is-active*) echo ${answers.active ?? "active"};;\n  *is-enabled*) echo ${answers.enabled ?? "enabled"};;\nesac\nexit 0\n`,
  );
  chmodSync(join(bin, "systemctl"), 0o755);
  return {
    env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
    calls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []),
  };
}

test("service status --user: the unit's path and what systemd says of it; uninstall --user stops, disables and removes it, keeping the state", async () => {
  using home = tempDir();
  const xdg = join(home.path, "xdg");
  const systemctl = fakeSystemctl(home.path);
  const env = { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: xdg, ...systemctl.env };
  expect((await runExoclaw(["service", "install", "--user"], env)).code).toBe(0);
  const unit = join(xdg, "systemd/user/exoclaw.service");

  const st = await runExoclaw(["service", "status", "--user"], env);
  expect(st.code).toBe(0);
  expect(st.stdout).toBe(`unit: ${unit}\nactive: active\nenabled: enabled\nlogs: journalctl --user -u exoclaw -n 20\n`);
  expect(systemctl.calls()).toEqual(["--user is-active exoclaw", "--user is-enabled exoclaw"]);

  const un = await runExoclaw(["service", "uninstall", "--user"], env);
  expect(un.code).toBe(0);
  expect(existsSync(unit)).toBe(false);
  expect(systemctl.calls().slice(2)).toEqual(["--user disable --now exoclaw", "--user daemon-reload"]);
  expect(un.stdout).toContain("stopped and disabled exoclaw");
  expect(un.stdout).toContain(`removed ${unit}`);
  expect(un.stdout).toContain(`kept the state directory ${home.path}`);
  expect(un.stdout).toContain(`rm -r ${home.path}`);
  expect(existsSync(home.path)).toBe(true);

  // Gone now: both commands say so and exit 1, and nothing asks systemd.
  for (const cmd of ["status", "uninstall"]) {
    const r = await runExoclaw(["service", cmd, "--user"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith(`exoclaw: no exoclaw service is installed (no ${unit})`);
    expect(r.stderr.split("\n").length).toBe(2);
  }
  expect(systemctl.calls()).toHaveLength(4);
});

test("service status reports a stopped unit as systemd does", async () => {
  using home = tempDir();
  const xdg = join(home.path, "xdg");
  const systemctl = fakeSystemctl(home.path, { active: "failed", enabled: "disabled" });
  const env = { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: xdg, ...systemctl.env };
  await runExoclaw(["service", "install", "--user"], env);
  const st = await runExoclaw(["service", "status", "--user"], env);
  expect(st.stdout).toContain("active: failed\nenabled: disabled\n");
});

/** The system unit's seams: a unit file in a temp dir, systemctl recorded, root or not. */
function system(
  dir: string,
  isRoot: boolean,
  answer: (argv: string[]) => { code: number; stdout: string; stderr: string } = () => ({
    code: 0,
    stdout: "",
    stderr: "",
  }),
) {
  const calls: string[][] = [];
  const sys: ServiceSystem = {
    isRoot,
    unitPath: () => join(dir, "exoclaw.service"),
    home: () => "/var/lib/exoclaw",
    run: (argv) => (calls.push(argv), answer(argv)),
  };
  return { sys, calls };
}

test("uninstalling the system unit needs root: without it, nothing is stopped or removed", () => {
  using dir = tempDir();
  const unit = dir.file("exoclaw.service", renderUnit({ exec: ["/x"], home: "/h", configFile: null, user: false }));
  const { sys, calls } = system(dir.path, false);
  expect(() => uninstallService(sys, false)).toThrow(
    `the system service's unit is ${unit}: run it with sudo, or use --user for a user service`,
  );
  expect(calls).toEqual([]);
  expect(existsSync(unit)).toBe(true);
  // Reading its state needs no root.
  expect(serviceStatus(sys, false)).toBe(
    `unit: ${unit}\nactive: unknown (systemctl exit 0)\nenabled: unknown (systemctl exit 0)\nlogs: journalctl -u exoclaw -n 20\n`,
  );
  expect(calls).toEqual([
    ["systemctl", "is-active", "exoclaw"],
    ["systemctl", "is-enabled", "exoclaw"],
  ]);
});

test("uninstalling the system unit as root: stop, disable, remove, daemon-reload; the state in /var/lib/exoclaw, the binary and the token file stay", () => {
  using dir = tempDir();
  const unit = dir.file("exoclaw.service", renderUnit({ exec: ["/x"], home: "/h", configFile: null, user: false }));
  const { sys, calls } = system(dir.path, true);
  const out = uninstallService(sys, false);
  expect(calls).toEqual([
    ["systemctl", "disable", "--now", "exoclaw"],
    ["systemctl", "daemon-reload"],
  ]);
  expect(existsSync(unit)).toBe(false);
  expect(out).toContain(`removed ${unit}`);
  expect(out).toContain(
    "kept the state directory /var/lib/exoclaw (config, credentials, database); to delete it too: sudo rm -r /var/lib/exoclaw",
  );
  expect(out).toContain("kept /usr/local/bin/exoclaw and /etc/exoclaw/gateway.env");
});

test("a systemctl that cannot stop the unit (no systemd, no bus) is reported, and the unit is removed anyway", () => {
  using dir = tempDir();
  const unit = dir.file("exoclaw.service", renderUnit({ exec: ["/x"], home: "/h", configFile: null, user: false }));
  const { sys } = system(dir.path, true, () => ({
    code: 1,
    stdout: "",
    stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\n",
  }));
  const out = uninstallService(sys, false);
  expect(out).toContain(
    "warning: could not stop and disable exoclaw (System has not been booted with systemd as init system (PID 1). Can't operate.); removing the unit anyway",
  );
  expect(out).toContain("warning: systemctl daemon-reload failed");
  expect(existsSync(unit)).toBe(false);
});

test("the user unit's own state directory is the one uninstall keeps, quoted when it has a space", () => {
  using dir = tempDir();
  dir.file("exoclaw.service", renderUnit({ exec: ["/x"], home: "/srv/exo claw", configFile: null, user: true }));
  const { sys } = system(dir.path, false);
  expect(uninstallService(sys, true)).toContain(
    "kept the state directory /srv/exo claw (config, credentials, database); to delete it too: rm -r '/srv/exo claw'",
  );
});
