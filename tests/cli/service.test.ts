import { expect, test } from "bun:test";
import { join } from "node:path";
import { renderUnit } from "../../src/cli/service.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

test("service install --print: a system unit that runs the installed binary as a dynamic unprivileged user, sandboxed", async () => {
  using home = tempDir();
  const r = await runExoclaw(["service", "install", "--print"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(0);
  const unit = r.stdout;
  expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/exoclaw gateway$/m);
  expect(unit).toContain("Environment=EXOCLAW_HOME=/var/lib/exoclaw");
  for (const d of ["DynamicUser=yes", "StateDirectory=exoclaw", "ProtectSystem=strict", "ProtectHome=yes", "PrivateDevices=yes", "CapabilityBoundingSet=", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "UMask=0077", "Restart=on-failure", "LimitNOFILE=65536", "WantedBy=multi-user.target"]) {
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
  const p = Bun.spawnSync([analyze, "security", "--offline=true", "--no-pager", file], { stdout: "pipe", stderr: "pipe" });
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
  const unit = renderUnit({ exec: ["/opt/my apps/exoclaw"], home: "/var/lib/exo claw", configFile: "/etc/exoclaw.toml", user: true });
  expect(unit).toContain('ExecStart="/opt/my apps/exoclaw" gateway --config /etc/exoclaw.toml');
  expect(unit).toContain('Environment=EXOCLAW_HOME="/var/lib/exo claw"');
});
