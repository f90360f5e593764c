/**
 * Messages between the gateway and a plugin-host child process (Bun IPC). The child runs wasm;
 * everything that needs authority — state, HTTP, secrets, logs — is asked of the parent.
 */

/** What the parent tells a child about one plugin. */
export interface PluginSpec {
  name: string;
  /** Module bytes, already memory-capped. */
  wasm: Uint8Array;
  /** Plain strings handed to the plugin (`config` grant). */
  config: Record<string, string>;
  /** Extism host-side memory limit (output, vars, http bodies), in 64 KiB pages. */
  maxPages: number;
  maxOutputBytes: number;
}

export type ParentMessage =
  | { t: "load"; spec: PluginSpec }
  | { t: "unload"; plugin: string }
  /**
   * `scope` is whose call this is (a person id, or "" for shared). An instance whose previous call
   * had another scope is thrown away first, so no module global carries one person's data to another.
   */
  | { t: "call"; id: number; plugin: string; fn: string; input: string; scope: string }
  | { t: "host_reply"; hid: number; value: string | null };

export type HostFunctionName = "kv_get" | "kv_set" | "http" | "fs_read" | "fs_write";

export type ChildMessage =
  | { t: "ready" }
  | { t: "result"; id: number; ok: true; output: string; rss: number }
  | { t: "result"; id: number; ok: false; error: string; kind: "trap" | "error" | "output" | "missing"; rss: number }
  | { t: "log"; plugin: string; level: number; message: string }
  | { t: "host_call"; hid: number; plugin: string; fn: HostFunctionName; args: (string | null)[] };
