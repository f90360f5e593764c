import { expect, test } from "bun:test";
import { join } from "node:path";
import { renderUnit } from "../../src/cli/service.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

test("service install --print shows a hardened unit running this program's gateway", async () => {
  using home = tempDir();
  const r = await runExoclaw(["service", "install", "--print"], { EXOCLAW_HOME: home.path });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Environment=EXOCLAW_HOME=${home.path}`);
  expect(r.stdout).toMatch(/^ExecStart=\S+ \S+main\.ts gateway$/m);
  expect(r.stdout).toContain("Restart=on-failure");
  expect(r.stdout).toContain("LimitNOFILE=65536");
  expect(r.stdout).toContain(`ReadWritePaths=${home.path}`);
  expect(r.stdout).toContain("WantedBy=multi-user.target");
});

test("service install --user writes the unit under XDG_CONFIG_HOME", async () => {
  using home = tempDir();
  const xdg = join(home.path, "xdg");
  const r = await runExoclaw(["service", "install", "--user"], { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: xdg });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("systemctl --user daemon-reload && systemctl --user enable --now exoclaw");
  const unit = await Bun.file(join(xdg, "systemd/user/exoclaw.service")).text();
  expect(unit).toContain("WantedBy=default.target");
  expect(unit).not.toContain("ProtectSystem");
});

test("paths with spaces are quoted; an explicit config is passed on", () => {
  const unit = renderUnit({ exec: ["/opt/my apps/exoclaw"], home: "/var/lib/exo claw", configFile: "/etc/exoclaw.toml", user: false });
  expect(unit).toContain('ExecStart="/opt/my apps/exoclaw" gateway --config /etc/exoclaw.toml');
  expect(unit).toContain('Environment=EXOCLAW_HOME="/var/lib/exo claw"');
});
