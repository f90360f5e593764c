/**
 * One `[[mcp]]` server: an official-SDK Client over the streamable HTTP transport, whose only way out
 * is the egress fetch. Connects in the background at start and again after a failure (backoff), keeps
 * the last tool list it got, and turns every call into a result the model reads: a server that is
 * down, slow, oversized, garbled or gone mid-call fails that call (`is_error`), never the caller.
 * Every string that leaves this module — results, errors, descriptions — is scrubbed of the server's
 * secret values.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { CallToolResult, McpError, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { McpConfig } from "../config/index.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { scrub } from "../lib/log.ts";
import { VERSION } from "../lib/version.ts";
import { createMcpFetch, McpTransportError } from "./egress-fetch.ts";
import { modelToolName } from "./names.ts";

/** The largest result text handed to a model. */
export const MAX_RESULT_BYTES = 1 << 20;
/** The largest HTTP answer read from a server (a result's JSON encoding, escapes included). */
export const MAX_BODY_BYTES = 4 << 20;
const MAX_TOOLS = 256;
const MAX_DESCRIPTION = 2048;
const MAX_SCHEMA_BYTES = 64 << 10;
const RETRY_MIN_MS = 2_000;
const RETRY_MAX_MS = 60_000;

/**
 * The SDK (with zod and its schemas) is loaded at the first connect, not when the gateway starts: a
 * config without `[[mcp]]` servers never pays for it. Only the SDK throws its errors, so before it is
 * loaded no error is one of them.
 */
let sdk: Awaited<ReturnType<typeof importSdk>> | undefined;
async function importSdk() {
  const [client, http, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  return {
    Client: client.Client,
    StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
    StreamableHTTPError: http.StreamableHTTPError,
    McpError: types.McpError,
    ErrorCode: types.ErrorCode,
  };
}
const loadSdk = async () => (sdk ??= await importSdk());
const isMcpError = (e: unknown): e is McpError => sdk !== undefined && e instanceof sdk.McpError;

export type McpState = "connecting" | "connected" | "error" | "stopped";

export interface McpToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface McpToolInfo {
  /** The server's own name for it. */
  name: string;
  /** The name models see (`<server>__<tool>`). */
  exposed_as: string;
  description: string;
  input_schema: Record<string, unknown>;
  annotations: McpToolAnnotations;
  /** Offered to agents (subject to each agent's `tools`); else `reason` says why not. */
  offered: boolean;
  reason?: string;
}

export interface McpServerStatus {
  name: string;
  url: string;
  state: McpState;
  error?: string;
  tools: number;
  offered: number;
  approval: string;
  server?: { name: string; version: string };
  connected_at?: number;
}

export interface ConnectionDeps {
  /** A credential's value, or null when it is not set. */
  secret: (name: string) => string | null;
  log: Logger;
  selfAddresses?: () => readonly { address: string; port: number }[];
  resolve?: (host: string) => Promise<string[]>;
  ca?: string;
}

const SECRET_HEADER = /auth|token|key|secret|password|credential|cookie/i;
const BOOL_HINTS = ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const;

export class McpConnection {
  readonly name: string;
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private state: McpState = "connecting";
  private error: string | undefined;
  private list: McpToolInfo[] = [];
  private serverInfo: { name: string; version: string } | undefined;
  private connectedAt: number | undefined;
  private secretValues: string[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelay = RETRY_MIN_MS;
  private inFlight = 0;
  private retiring = false;

  constructor(
    readonly entry: McpConfig,
    private readonly deps: ConnectionDeps,
  ) {
    this.name = entry.name;
  }

  /** Scrubs this server's secret values from any text. */
  clean(text: string): string {
    return scrub(text, this.secretValues);
  }

  status(): McpServerStatus {
    return {
      name: this.name,
      url: this.entry.url ?? "",
      state: this.state,
      ...(this.error !== undefined && { error: this.error }),
      tools: this.list.length,
      offered: this.list.filter((t) => t.offered).length,
      approval: this.entry.approval,
      ...(this.serverInfo && { server: this.serverInfo }),
      ...(this.connectedAt !== undefined && { connected_at: this.connectedAt }),
    };
  }

  /** The last tool list the server gave (kept while it is down, so a call says why it failed). */
  tools(): readonly McpToolInfo[] {
    return this.list;
  }

  /** Starts connecting in the background; failures are retried with backoff. */
  start(): void {
    void this.ensure().catch(() => {});
  }

  /** Connects (once at a time) and lists the tools. Throws McpTransportError or the SDK's error. */
  ensure(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.state === "stopped")
      return Promise.reject(new McpTransportError("this server was removed from the config"));
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Lists the tools again (inspect); the connection is made first if needed. */
  async refresh(): Promise<void> {
    const client = await this.ensure();
    try {
      this.list = await this.listTools(client);
    } catch (e) {
      this.drop(e);
      throw e;
    }
  }

  private async connect(): Promise<Client> {
    clearTimeout(this.retryTimer);
    if (this.state !== "stopped") this.state = "connecting";
    const e = this.entry;
    const headers: Record<string, string> = {};
    const values: string[] = [];
    for (const name of e.secrets) {
      const value = this.deps.secret(name);
      if (value === null) {
        this.fail(`secret ${name} is not set: run \`exoclaw secret set ${name}\``);
        throw new McpTransportError(this.error!);
      }
      values.push(value);
    }
    const byName = new Map(e.secrets.map((n, i) => [n, values[i]!]));
    for (const [k, v] of Object.entries(e.headers))
      headers[k] = v.replace(/\{\{secret:([a-z0-9_-]+)\}\}/g, (_, n: string) => byName.get(n) ?? "");
    // A credential written into a header literally (not as a placeholder) is scrubbed like a secret too.
    const literal = Object.entries(headers)
      .filter(([k, v]) => SECRET_HEADER.test(k) && v.length >= 8)
      .map(([, v]) => v.replace(/^(Bearer|Basic|Token)\s+/i, ""));
    this.secretValues = [...values, ...literal];
    const { Client, StreamableHTTPClientTransport } = await loadSdk();
    const url = new URL(e.url!);
    const transport = new StreamableHTTPClientTransport(url, {
      fetch: createMcpFetch({
        url,
        headers: () => headers,
        timeoutMs: e.timeout_ms,
        maxBodyBytes: MAX_BODY_BYTES,
        ...(this.deps.resolve && { resolve: this.deps.resolve }),
        ...(this.deps.selfAddresses && { selfAddresses: this.deps.selfAddresses }),
        ...(this.deps.ca && { ca: this.deps.ca }),
      }),
      // A redirect is not followed across origins by the SDK, and the egress fetch refuses any other host anyway.
      redirectPolicy: "same-origin",
      reconnectionOptions: {
        maxRetries: 0,
        initialReconnectionDelay: 1000,
        maxReconnectionDelay: 1000,
        reconnectionDelayGrowFactor: 1,
      },
    });
    // No capabilities: the server may not ask exoclaw to sample a model, list roots or elicit input.
    // Output schemas are not checked here: compiling a server's schema (regexes) is the server's
    // code running in the gateway, and the model reads the text either way.
    const client = new Client(
      { name: "exoclaw", version: VERSION },
      {
        capabilities: {},
        jsonSchemaValidator: {
          getValidator: () => (input: unknown) => ({ valid: true, data: input as never, errorMessage: undefined }),
        },
      },
    );
    client.onerror = () => {}; // failures are reported per request
    try {
      await client.connect(transport, { timeout: e.timeout_ms });
      this.list = await this.listTools(client);
    } catch (err) {
      await client.close().catch(() => {});
      this.fail(this.describe(err));
      throw err;
    }
    if (this.state === "stopped" || this.retiring) {
      // Removed (reload, shutdown) while connecting: this session is nobody's.
      await client.close().catch(() => {});
      throw new McpTransportError("this server was removed from the config");
    }
    const info = client.getServerVersion();
    this.serverInfo = info
      ? { name: this.clean(String(info.name).slice(0, 200)), version: this.clean(String(info.version).slice(0, 100)) }
      : undefined;
    this.client = client;
    this.state = "connected";
    this.error = undefined;
    this.connectedAt = Date.now();
    this.retryDelay = RETRY_MIN_MS;
    this.deps.log.info("mcp server connected", { mcp: this.name, tools: this.list.length });
    return client;
  }

  private async listTools(client: Client): Promise<McpToolInfo[]> {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20 && tools.length < MAX_TOOLS; page++) {
      const r = await client.listTools(cursor ? { cursor } : {}, { timeout: this.entry.timeout_ms });
      tools.push(...r.tools);
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    const wanted = this.entry.tools;
    const taken = new Set<string>();
    return tools.slice(0, MAX_TOOLS).map((t): McpToolInfo => {
      const annotations: McpToolAnnotations = {};
      if (typeof t.annotations?.title === "string") annotations.title = this.clean(t.annotations.title.slice(0, 200));
      for (const k of BOOL_HINTS) if (typeof t.annotations?.[k] === "boolean") annotations[k] = t.annotations[k];
      const exposed = modelToolName(this.name, t.name);
      const info: McpToolInfo = {
        name: this.clean(t.name),
        exposed_as: exposed,
        description: this.clean((t.description ?? t.title ?? "").slice(0, MAX_DESCRIPTION)),
        input_schema: t.inputSchema as Record<string, unknown>,
        annotations,
        offered: true,
      };
      const not = (reason: string) => Object.assign(info, { offered: false, reason });
      if (!wanted.includes("*") && !wanted.includes(t.name)) return not("not listed in this server's tools = [...]");
      if (taken.has(exposed)) return not(`its model name ${exposed} is taken by another tool of this server`);
      if (Buffer.byteLength(JSON.stringify(t.inputSchema)) > MAX_SCHEMA_BYTES)
        return not(`input schema larger than ${MAX_SCHEMA_BYTES} bytes`);
      if (t.execution?.taskSupport === "required")
        return not("the tool runs only as a task, which exoclaw does not support");
      taken.add(exposed);
      return info;
    });
  }

  /**
   * Calls a tool by the server's name for it. Never throws: every failure is an `is_error` result
   * naming the server and saying what went wrong.
   */
  async call(tool: string, input: unknown, signal?: AbortSignal): Promise<{ content: string; is_error: boolean }> {
    const fail = (why: string) => ({
      content: this.clean(`MCP server ${this.name}: ${tool} failed: ${why}`),
      is_error: true,
    });
    if (signal?.aborted) return fail("cancelled");
    this.inFlight++;
    try {
      const client = await this.ensure();
      const args =
        input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
      const timeout = this.entry.timeout_ms;
      const result = (await client.callTool({ name: tool, arguments: args }, undefined, {
        timeout,
        maxTotalTimeout: timeout,
        ...(signal && { signal }),
      })) as CallToolResult;
      const text = renderResult(result);
      if (Buffer.byteLength(text) > MAX_RESULT_BYTES)
        return fail(`the result is larger than ${MAX_RESULT_BYTES} bytes; refused`);
      // An error with no words (found by tests/fuzz/mcp.test.ts) would reach the model as an empty
      // string: say whose error it is.
      if (result.isError === true && text.trim() === "") return fail("the server reported an error without a message");
      // Scrubbing can lengthen the text (a masked value's marker is longer than it): the cap holds
      // for what the model gets (found by tests/fuzz/mcp.test.ts: 1,025 characters over).
      const content = this.clean(text);
      if (Buffer.byteLength(content) > MAX_RESULT_BYTES)
        return fail(`the result is larger than ${MAX_RESULT_BYTES} bytes; refused`);
      return { content, is_error: result.isError === true };
    } catch (e) {
      if (signal?.aborted) return fail("cancelled");
      // A JSON-RPC error answer means the server is there and talking; anything else, reconnect first next time.
      if (!isMcpError(e) || e.code === sdk!.ErrorCode.RequestTimeout || e.code === sdk!.ErrorCode.ConnectionClosed)
        this.drop(e);
      return fail(this.describe(e));
    } finally {
      this.inFlight--;
      if (this.retiring && this.inFlight === 0) void this.closeNow();
    }
  }

  /** A one-line, scrubbed reason for a failure. */
  describe(e: unknown): string {
    let why: string;
    if (isMcpError(e) && e.code === sdk!.ErrorCode.RequestTimeout) why = `no answer within ${this.entry.timeout_ms} ms`;
    else if (isMcpError(e)) {
      // A server's own words, cut: an error message of a whole MiB went to the model as it was
      // (found by tests/fuzz/mcp.test.ts), past the 1 MiB cap on what a call returns.
      const words = e.message.replace(/^MCP error -?\d+: /, "");
      why = `the server answered error ${e.code}: ${words.length > 2000 ? `${words.slice(0, 2000)}… (cut at 2000 characters)` : words}`;
    } else if (e instanceof McpTransportError) why = e.message;
    else if (e instanceof Error && (e.name === "ZodError" || "issues" in e))
      why = "the server's answer is not valid MCP (wrong shape)";
    else if (sdk !== undefined && e instanceof sdk.StreamableHTTPError) {
      const detail = e.message
        .replace(/^Streamable HTTP error: (Error POSTing to endpoint: )?/, "")
        .trim()
        .slice(0, 300);
      why = `the server answered HTTP ${e.code ?? "error"}${detail ? `: ${detail}` : ""}`;
    } else why = describeError(e).slice(0, 300);
    return this.clean(why);
  }

  private fail(why: string): void {
    const again = this.error === this.clean(why);
    this.state = "error";
    this.error = this.clean(why);
    // Retries repeat the same failure: one line per new reason, not one per attempt.
    if (!again) this.deps.log.warn("mcp server unavailable", { mcp: this.name, error: this.error });
    this.scheduleRetry();
  }

  /** Forgets the session after a transport failure; the next call (or the retry timer) reconnects. */
  private drop(e: unknown): void {
    const client = this.client;
    this.client = null;
    if (client) void client.close().catch(() => {});
    if (this.state !== "stopped") this.fail(this.describe(e));
  }

  private scheduleRetry(): void {
    if (this.state === "stopped" || this.retiring) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), this.retryDelay);
    this.retryTimer.unref?.();
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  /** Closes once the calls in flight have finished (a reload replaced this connection). */
  retire(): Promise<void> {
    this.retiring = true;
    clearTimeout(this.retryTimer);
    return this.inFlight === 0 ? this.closeNow() : Promise.resolve();
  }

  private async closeNow(): Promise<void> {
    this.state = "stopped";
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await client?.close().catch(() => {});
  }

  async stop(): Promise<void> {
    await this.closeNow();
  }
}

/** The text a model reads for a tool result. Links and binary content are described, never fetched. */
export function renderResult(r: CallToolResult): string {
  const parts: string[] = [];
  for (const c of r.content ?? []) {
    switch (c.type) {
      case "text":
        parts.push(c.text);
        break;
      case "image":
      case "audio":
        parts.push(`[${c.type} ${c.mimeType}, ${Math.floor((c.data.length * 3) / 4)} bytes, not shown]`);
        break;
      case "resource":
        parts.push(
          "text" in c.resource && typeof c.resource.text === "string"
            ? c.resource.text
            : `[resource ${c.resource.uri}, binary, not shown]`,
        );
        break;
      case "resource_link":
        parts.push(`[resource link ${c.uri} (not fetched)]`);
        break;
      default:
        parts.push(`[${(c as { type: string }).type} content, not shown]`);
    }
  }
  if (parts.length === 0 && r.structuredContent !== undefined) parts.push(JSON.stringify(r.structuredContent));
  return parts.join("\n");
}
