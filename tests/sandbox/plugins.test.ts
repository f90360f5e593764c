/** The plugins shipped in plugins/, run for real in the sandbox. */
import { describe, expect, test } from "bun:test";
import { startOutside } from "../helpers/outside.ts";
import { grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";

describe("http-get", () => {
  // Secrets are not filled from the model's tool input (tests/sandbox/egress.test.ts), so none here.
  test("fetches from a granted host and refuses others", async () => {
    await using outside = startOutside();
    await using t = startTestHost();
    await t.host.load(
      grant("http-get", { allowed_hosts: [`127.0.0.1:${outside.port}`] }),
      await readWasm(pluginPath("http-get")),
    );
    const ok = await t.host.callTool("http-get", "http_get", {
      url: `${outside.url}/page`,
      headers: { authorization: "Bearer abc" },
    });
    expect(ok).toEqual({ content: `HTTP 200\n{"path":"/page","authorization":"Bearer abc"}`, is_error: false });
    const denied = await t.host.callTool("http-get", "http_get", { url: "http://example.com/" });
    expect(denied).toEqual({
      content: "request failed: host example.com is not in this plugin's allowed_hosts",
      is_error: true,
    });
    const big = await t.host.callTool("http-get", "http_get", { url: `${outside.url}/big` });
    expect(big.is_error).toBe(true);
    expect(await t.host.callTool("http-get", "http_get", {})).toEqual({ content: "url is required", is_error: true });
  });
});

describe("notes", () => {
  test("remembers, recalls and forgets, with state in the host's store", async () => {
    await using t = startTestHost();
    await t.host.load(grant("notes"), await readWasm(pluginPath("notes")));
    const call = (tool: string, input: unknown) => t.host.callTool("notes", tool, input).then((r) => r.content);
    expect(await call("recall", {})).toBe("no notes yet");
    expect(await call("remember", { topic: "alice", text: "likes tea ☕" })).toBe("remembered under alice (1 notes)");
    expect(await call("remember", { topic: "alice", text: 'said "hi"\nthen left' })).toBe(
      "remembered under alice (2 notes)",
    );
    expect(await call("remember", { topic: "bob", text: "vegan" })).toBe("remembered under bob (1 notes)");
    expect(await call("recall", { topic: "alice" })).toBe('- likes tea ☕\n- said "hi"\nthen left');
    expect(await call("recall", {})).toBe("topics: alice, bob");
    expect(await call("forget", { topic: "alice" })).toBe("forgot alice");
    expect(await call("recall", { topic: "alice" })).toBe("no notes about alice");
    expect(await call("recall", {})).toBe("topics: bob");
    expect(await t.host.callTool("notes", "remember", { topic: "" })).toEqual({
      content: "topic and text are required",
      is_error: true,
    });
  });
});
