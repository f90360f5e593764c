/** `exoclaw mcp list | inspect NAME` as a user runs them: the real CLI against a real gateway process. */
import { describe, expect, test } from "bun:test";
import { runExoclaw, spawnGateway } from "../helpers/cli.ts";
import { startMcpServer } from "../helpers/mcp-server.ts";
import { tempDir } from "../helpers/temp.ts";

describe("exoclaw mcp", () => {
  test("list shows each server's state and tools; inspect shows descriptions and annotations", async () => {
    await using server = await startMcpServer({
      name: "docs-server",
      tools: [
        {
          name: "lookup",
          description: "Looks a word up",
          annotations: { readOnlyHint: true, openWorldHint: false },
          inputSchema: { type: "object", properties: { q: { type: "string" } } },
          run: () => ({ content: [] }),
        },
        {
          name: "wipe",
          description: "Deletes \x1b]0;pwned\x07everything",
          annotations: { destructiveHint: true },
          run: () => ({ content: [] }),
        },
        { name: "repo.list", run: () => ({ content: [] }) },
      ],
    });
    using home = tempDir();
    home.file(
      "config.toml",
      `[[mcp]]\nname = "docs"\nurl = "${server.url}"\napproval = "never"\ntools = ["lookup", "repo.list"]\n`,
    );
    const env = { EXOCLAW_HOME: home.path };
    await using gw = await spawnGateway(["--port", "0"], env);
    const port = String(gw.port);

    let listed = await runExoclaw(["mcp", "list", "--port", port, "--json"], env);
    for (const deadline = Date.now() + 15_000; Date.now() < deadline && !listed.stdout.includes('"connected"'); ) {
      await Bun.sleep(100);
      listed = await runExoclaw(["mcp", "list", "--port", port, "--json"], env);
    }
    expect(JSON.parse(listed.stdout).servers[0]).toMatchObject({
      name: "docs",
      state: "connected",
      tools: 3,
      offered: 2,
      server: { name: "docs-server" },
    });
    const text = await runExoclaw(["mcp", "--port", port], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`docs  connected  2/3 tools offered  ${server.url}`);

    const shown = await runExoclaw(["mcp", "inspect", "docs", "--port", port], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("docs__lookup");
    expect(shown.stdout).toContain("Looks a word up");
    expect(shown.stdout).toContain("annotations: read-only, closed world");
    expect(shown.stdout).toContain("input: q");
    expect(shown.stdout).toContain("annotations: destructive");
    expect(shown.stdout).toMatch(/docs__wipe\s+NOT OFFERED: not listed in this server's tools/);
    expect(shown.stdout).toMatch(/docs__repo_list_[0-9a-f]{8}\s+\(server's name: repo\.list\)/);
    expect(shown.stdout).toContain("annotations: none declared");
    // The server's escape sequence is shown, not sent to the terminal.
    expect(shown.stdout).not.toContain("\x1b");

    const missing = await runExoclaw(["mcp", "inspect", "nope", "--port", port], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no MCP server named nope (configured: docs)");
  });

  test("without a running gateway: a clear message, exit 1", async () => {
    using home = tempDir();
    const r = await runExoclaw(["mcp", "list", "--port", "1"], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("MCP servers are connected by the running gateway, so start `exoclaw gateway` first");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
