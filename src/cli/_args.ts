/** Flags shared by commands, and their parsing. */
import { UsageError } from "../lib/errors.ts";

export const configArg = {
  config: { type: "string", description: "Config file (default: $EXOCLAW_CONFIG or <state>/config.toml)" },
} as const;

/** Flags of commands that talk to a running gateway. */
export const clientArgs = {
  ...configArg,
  url: { type: "string", description: "Gateway WebSocket URL, e.g. ws://127.0.0.1:7200/ws" },
  port: { type: "string", description: "Gateway port on this machine" },
  token: { type: "string", description: "Gateway token (default: $EXOCLAW_TOKEN)" },
} as const;

/** Parses a --port value; throws UsageError for anything but an integer 0..65535. */
export function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65535)
    throw new UsageError(`--port: expected an integer 0-65535, got "${value}"`);
  return Number(value);
}

/** Reads an optional string flag; citty gives `true` for a string flag written without a value. */
export function stringFlag(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} needs a value`);
  return value;
}
