/**
 * The approval policy's rules (src/approvals/policy.ts, src/mcp/effects.ts): which tools are risky,
 * which results taint a turn, which setting applies, and why a call must wait.
 */
import { describe, expect, test } from "bun:test";
import { approvalReason, effectsOf, initialTaint, isTaintSource, settingOf } from "../../src/approvals/index.ts";
import type { ToolOrigin } from "../../src/agent/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import { effectsOf as mcpEffects } from "../../src/mcp/index.ts";

const plugin = (over: Partial<Extract<ToolOrigin, { kind: "plugin" }>> = {}): ToolOrigin => ({
  kind: "plugin",
  plugin: "web",
  tool: "get",
  network: false,
  effects: undefined,
  ...over,
});

describe("effects", () => {
  test("MCP annotations: absent ones take the spec's risky defaults; read-only closed-world is pure", () => {
    expect(mcpEffects({})).toEqual(["egress", "mutates"]);
    expect(mcpEffects({ readOnlyHint: true, openWorldHint: false })).toEqual([]);
    expect(mcpEffects({ destructiveHint: true, openWorldHint: false })).toEqual(["mutates"]);
    expect(mcpEffects({ destructiveHint: false, openWorldHint: false })).toEqual([]);
    expect(mcpEffects({ readOnlyHint: true })).toEqual(["egress"]);
  });

  test("a plugin's declared effects count; declaring nothing means egress with network grants, else pure", () => {
    expect(effectsOf(plugin({ network: true }))).toEqual(["egress"]);
    expect(effectsOf(plugin({ network: false }))).toEqual([]);
    expect(effectsOf(plugin({ network: true, effects: [] }))).toEqual([]);
    expect(effectsOf(plugin({ effects: ["mutates"] }))).toEqual(["mutates"]);
    expect(effectsOf({ kind: "host" })).toEqual([]);
  });

  test("network plugins' and MCP results taint; host tools and offline plugins do not", () => {
    expect(isTaintSource(plugin({ network: true, effects: [] }))).toBe(true);
    expect(isTaintSource(plugin())).toBe(false);
    expect(isTaintSource({ kind: "source", owner: "s", tool: "t", effects: [], untrusted: true })).toBe(true);
    expect(isTaintSource({ kind: "host" })).toBe(false);
  });
});

describe("settings and reasons", () => {
  const config = loadConfig({ EXOCLAW_HOME: "/nonexistent" }, {});
  const withFile = {
    ...config,
    plugins: [
      {
        ...({} as (typeof config.plugins)[number]),
        name: "web",
        path: "x",
        allowed_hosts: [],
        allowed_paths: {},
        secrets: [],
        memory_mb: 1,
        timeout_ms: 1,
        config: {},
        approval: "untrusted" as const,
        tool_approval: { post: "always" as const },
      },
    ],
    mcp: [
      {
        name: "files",
        url: "https://x/mcp",
        headers: {},
        secrets: [],
        tools: ["*"],
        timeout_ms: 1,
        approval: "untrusted" as const,
        tool_approval: { lookup: "never" as const },
      },
    ],
  };

  test("a tool's own entry wins over its plugin's or server's setting; defaults are never (plugins) and untrusted (MCP)", () => {
    expect(settingOf(plugin({ tool: "post" }), withFile)).toBe("always");
    expect(settingOf(plugin({ tool: "get" }), withFile)).toBe("untrusted");
    expect(settingOf(plugin({ plugin: "unlisted" }), withFile)).toBe("never");
    expect(settingOf({ kind: "source", owner: "files", tool: "lookup", effects: [], untrusted: true }, withFile)).toBe(
      "never",
    );
    expect(settingOf({ kind: "source", owner: "files", tool: "rm", effects: [], untrusted: true }, withFile)).toBe(
      "untrusted",
    );
    expect(settingOf({ kind: "source", owner: "gone", tool: "rm", effects: [], untrusted: true }, config)).toBe(
      "untrusted",
    );
    expect(settingOf({ kind: "host" }, withFile)).toBe("never");
  });

  test("always asks; untrusted asks only for a risky tool in a tainted turn; never never asks", () => {
    const risky = plugin({ network: true });
    expect(approvalReason(plugin(), "always", null)).toBe("always");
    expect(approvalReason(risky, "untrusted", null)).toBeNull();
    expect(approvalReason(risky, "untrusted", "a result of get")).toBe("untrusted after a result of get");
    expect(approvalReason(plugin({ effects: [] }), "untrusted", "a result of get")).toBeNull();
    expect(approvalReason(risky, "never", "a result of get")).toBeNull();
  });

  test("a channel message taints the turn unless its sender is the channel's owner; the operator's turns start clean", () => {
    const channels = { channels: { telegram: { owner: "42" } } } as never;
    const session = { key: "k", agent: "main", channel: "telegram", account: "bot", peer: "42", thread: null };
    expect(initialTaint(channels, session, undefined)).toBeNull();
    expect(initialTaint(channels, session, "telegram:bot:42")).toBeNull();
    expect(initialTaint(channels, session, "telegram:bot:43")).toBe("a message from telegram:bot:43");
    expect(initialTaint(channels, session, null)).toBe("a group message on telegram");
    expect(initialTaint({ channels: {} } as never, session, "telegram:bot:42")).toBe("a message from telegram:bot:42");
  });
});

describe("the gate fails closed", () => {
  test("when the approval request cannot be stored, the call is not run and the model is told why", async () => {
    const { ApprovalBroker, gateToolBox } = await import("../../src/approvals/index.ts");
    const { memoryApprovals, StoreError } = await import("../../src/store/index.ts");
    const { createLogger } = await import("../../src/lib/log.ts");
    const approvals = { ...memoryApprovals(), addApproval: () => Promise.reject(new StoreError("disk full")) };
    const broker = new ApprovalBroker({
      store: approvals,
      timeoutMs: () => 1000,
      secrets: () => [],
      log: createLogger({ format: "json", level: "error", write: () => {} }),
    });
    let ran = 0;
    const inner = {
      specs: () => [],
      run: async () => (ran++, { content: "ran", is_error: false }),
      origin: (): ToolOrigin => plugin({ network: true }),
    };
    const gated = gateToolBox(inner, {
      broker,
      agent: "main",
      session: "s",
      taintedBy: null,
      origin: null,
      config: () => ({ plugins: [], mcp: [] }),
      setting: () => "always",
    });
    const r = await gated.run("get", {}, new AbortController().signal);
    expect(r).toEqual({ content: "not run: the approval request could not be recorded (disk full)", is_error: true });
    expect(ran).toBe(0);
  });
});

describe("the broker at shutdown", () => {
  test("a request still waiting when the broker closes is denied by shutdown, and stored so", async () => {
    const { ApprovalBroker } = await import("../../src/approvals/index.ts");
    const { memoryApprovals } = await import("../../src/store/index.ts");
    const { createLogger } = await import("../../src/lib/log.ts");
    const store = memoryApprovals();
    const broker = new ApprovalBroker({
      store,
      timeoutMs: () => 600_000,
      secrets: () => [],
      log: createLogger({ format: "json", level: "error", write: () => {} }),
    });
    const asked = broker.ask({
      agent: "main",
      session: "s",
      tool: "get",
      tool_use_id: "tu0",
      input: {},
      why: "always",
      signal: new AbortController().signal,
    });
    const deadline = Date.now() + 5_000;
    while (broker.pending().length === 0 && Date.now() < deadline) await Bun.sleep(5);
    const [waiting] = broker.pending();
    await broker.close("shutdown");
    expect(await asked).toMatchObject({ id: waiting!.id, state: "denied", by: "shutdown" });
    expect(await store.getApproval(waiting!.id)).toMatchObject({ state: "denied", decided_by: "shutdown" });
    expect(broker.pending()).toEqual([]);
  });
});
