/**
 * The plugin-host child (`exoclaw __plugin-host`): runs Extism plugins for the gateway, one call at
 * a time. A runaway wasm loop cannot be interrupted inside Bun, so the parent kills this whole
 * process on a deadline; nothing here needs to survive that. Host functions never throw: failures
 * become null results the guest can see.
 */
import createPlugin, { type CallContext, type Plugin } from "@extism/extism";
import type { ChildMessage, HostFunctionName, ParentMessage, PluginSpec } from "./child-protocol.ts";
import { describeError } from "../lib/errors.ts";

interface Loaded {
  spec: PluginSpec;
  /** null when the module did not compile (`invalid` says why); the gateway checks only its structure. */
  module: WebAssembly.Module | null;
  invalid?: string;
  instance: Plugin | null;
  /** The scope of the instance's previous call. */
  scope: string;
}

const LEVELS: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, trace: 0 };
/** Log lines a plugin may send per call; the rest are dropped (a plugin must not flood the host's log). */
export const MAX_LOG_LINES_PER_CALL = 100;

export async function runChild(): Promise<void> {
  const send = (m: ChildMessage) => process.send?.(m);
  const plugins = new Map<string, Loaded>();
  const pendingHost = new Map<number, (v: string | null) => void>();
  let logBudget = MAX_LOG_LINES_PER_CALL;
  const sendLog = (plugin: string, level: number, message: string) => {
    if (logBudget > 0) send({ t: "log", plugin, level, message: message.slice(0, 4096) });
    else if (logBudget === 0)
      send({
        t: "log",
        plugin,
        level: 2,
        message: `more than ${MAX_LOG_LINES_PER_CALL} log lines in one call; the rest of this call's lines are dropped`,
      });
    logBudget--;
  };
  let nextHid = 1;

  const askParent = (plugin: string, fn: HostFunctionName, args: (string | null)[]) =>
    new Promise<string | null>((resolve) => {
      const hid = nextHid++;
      pendingHost.set(hid, resolve);
      send({ t: "host_call", hid, plugin, fn, args });
    });

  const logger = (plugin: () => string) => {
    const at =
      (level: string) =>
      (...a: unknown[]) =>
        sendLog(plugin(), LEVELS[level] ?? 1, a.map(String).join(" "));
    return {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      trace: at("trace"),
      log: at("info"),
    } as unknown as Console;
  };

  const text = (cp: CallContext, off: bigint): string | null => (off === 0n ? null : (cp.read(off)?.text() ?? null));

  const instantiate = async (l: Loaded, module: WebAssembly.Module): Promise<Plugin> => {
    const name = l.spec.name;
    return createPlugin(
      { wasm: [{ module }] } as never,
      {
        useWasi: false,
        runInWorker: false,
        config: l.spec.config,
        logger: logger(() => name),
        logLevel: "info",
        memory: { maxPages: l.spec.maxPages, maxVarBytes: 1 << 20, maxHttpResponseBytes: 1 << 20 },
        // Extism's own http_request is not offered: exo_http is the one way out.
        allowedHosts: [],
        functions: {
          "extism:host/user": {
            exo_log(cp: CallContext, level: number, off: bigint) {
              sendLog(name, Number(level), text(cp, off) ?? "");
            },
            exo_now: () => Date.now(),
            async exo_kv_get(cp: CallContext, key: bigint) {
              const v = await askParent(name, "kv_get", [text(cp, key)]);
              return v === null ? 0n : cp.store(v);
            },
            async exo_kv_set(cp: CallContext, key: bigint, value: bigint) {
              await askParent(name, "kv_set", [text(cp, key), text(cp, value)]);
            },
            async exo_fs_read(cp: CallContext, path: bigint) {
              return cp.store((await askParent(name, "fs_read", [text(cp, path)])) ?? '{"error":"host error"}');
            },
            async exo_fs_write(cp: CallContext, path: bigint, content: bigint) {
              return cp.store(
                (await askParent(name, "fs_write", [text(cp, path), text(cp, content)])) ?? '{"error":"host error"}',
              );
            },
            async exo_http(cp: CallContext, req: bigint) {
              const v = await askParent(name, "http", [text(cp, req)]);
              return cp.store(v ?? JSON.stringify({ status: 0, error: "host error" }));
            },
          },
          // Imports AssemblyScript's standard library may add.
          env: {
            seed: () => Date.now(),
            "Date.now": () => Date.now(),
            "console.log": () => {},
            abort: () => {},
          },
        },
      } as never,
    );
  };

  const call = async (id: number, pluginName: string, fn: string, input: string, scope: string) => {
    const rss = () => process.memoryUsage.rss();
    const l = plugins.get(pluginName);
    logBudget = MAX_LOG_LINES_PER_CALL;
    if (!l)
      return send({
        t: "result",
        id,
        ok: false,
        kind: "missing",
        error: `plugin ${pluginName} is not loaded`,
        rss: rss(),
      });
    if (!l.module)
      return send({ t: "result", id, ok: false, kind: "error", error: `not a wasm module: ${l.invalid}`, rss: rss() });
    const module = l.module;
    try {
      // Same-scope calls stay warm; a call for someone else gets a fresh instance (fresh globals).
      if (l.instance && l.scope !== scope) {
        const old = l.instance;
        l.instance = null;
        await old.close().catch(() => {});
      }
      l.scope = scope;
      l.instance ??= await instantiate(l, module);
      const out = await l.instance.call(fn, input);
      const bytes = out?.bytes() ?? new Uint8Array();
      if (bytes.byteLength > l.spec.maxOutputBytes) {
        return send({
          t: "result",
          id,
          ok: false,
          kind: "output",
          error: `output of ${bytes.byteLength} bytes exceeds the limit of ${l.spec.maxOutputBytes}`,
          rss: rss(),
        });
      }
      send({ t: "result", id, ok: true, output: new TextDecoder("utf-8", { fatal: true }).decode(bytes), rss: rss() });
    } catch (e) {
      const message = describeError(e);
      const trap = !/^Plugin-originated error/.test(message);
      // After a trap the guest's heap may be inconsistent: drop the instance, keep the compiled module.
      if (trap && l.instance) {
        await l.instance.close().catch(() => {});
        l.instance = null;
      }
      send({
        t: "result",
        id,
        ok: false,
        kind: trap ? "trap" : "error",
        error: message.replace(/^Plugin-originated error: /, ""),
        rss: rss(),
      });
    }
  };

  // Calls run strictly one at a time: an Extism instance must never be entered concurrently.
  let queue = Promise.resolve();
  process.on("message", (raw: unknown) => {
    const m = raw as ParentMessage;
    switch (m.t) {
      case "load": {
        const old = plugins.get(m.spec.name);
        if (old?.instance) void old.instance.close();
        const wasm =
          m.spec.wasm instanceof Uint8Array
            ? m.spec.wasm
            : new Uint8Array(Object.values(m.spec.wasm as object) as number[]);
        let module: WebAssembly.Module | null = null;
        let invalid: string | undefined;
        try {
          module = new WebAssembly.Module(wasm);
        } catch (e) {
          invalid = describeError(e);
        }
        plugins.set(m.spec.name, {
          spec: { ...m.spec, wasm },
          module,
          ...(invalid !== undefined && { invalid }),
          instance: null,
          scope: "",
        });
        break;
      }
      case "unload": {
        const old = plugins.get(m.plugin);
        if (old?.instance) void old.instance.close();
        plugins.delete(m.plugin);
        break;
      }
      case "call":
        queue = queue.then(async () => {
          await call(m.id, m.plugin, m.fn, m.input, m.scope ?? "");
        });
        break;
      case "host_reply": {
        const resolve = pendingHost.get(m.hid);
        pendingHost.delete(m.hid);
        resolve?.(m.value);
        break;
      }
    }
  });
  process.on("disconnect", () => process.exit(0));
  send({ t: "ready" });
}
