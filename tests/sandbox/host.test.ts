import { describe, expect, test } from "bun:test";
import { grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";

describe("plugin host", () => {
  test("loads the echo plugin, describes it, and calls its tool with non-ASCII text", async () => {
    await using t = startTestHost();
    const loaded = await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    expect(loaded.description).toMatchObject({ abi: 1, name: "echo", kind: "tool" });
    expect(loaded.description.tools.map((x) => x.name)).toEqual(["echo"]);
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await t.host.callTool("echo", "echo", { text: "héllo ✓ 🦀 مرحبا" })).toEqual({
      content: "héllo ✓ 🦀 مرحبا",
      is_error: false,
    });
  });

  test("100 concurrent calls to one plugin are all answered correctly", async () => {
    await using t = startTestHost();
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => t.host.callTool("echo", "echo", { text: `n${i}` })),
    );
    expect(results.map((r) => r.content)).toEqual(Array.from({ length: 100 }, (_, i) => `n${i}`));
  });
});
