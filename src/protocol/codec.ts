/**
 * Frame codecs (SPEC §5): text frames carry JSON, binary frames carry MessagePack of the same
 * objects. A reply goes out in the encoding of the request it answers.
 */
import type { Packr } from "msgpackr";
import { ExoError } from "../lib/errors.ts";

export type Encoding = "json" | "msgpack";

// Plain MessagePack maps/arrays only: no msgpackr record extension, so any client library can read us.
// msgpackr is loaded at the first binary frame, not at start: loading it probes for its native addon
// (start-up time and memory that a gateway whose clients speak JSON never needs).
let packrOnce: Packr | undefined;
function packr(): Packr {
  if (packrOnce) return packrOnce;
  const { Packr } = require("msgpackr") as typeof import("msgpackr");
  packrOnce = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, variableMapSize: true });
  return packrOnce;
}

/** Decodes one frame; throws ExoError("parse_error") on malformed input. */
export function decodeFrame(data: string | Uint8Array): { value: unknown; encoding: Encoding } {
  if (typeof data === "string") {
    try {
      return { value: JSON.parse(data), encoding: "json" };
    } catch {
      throw new ExoError("parse_error", "parse error: invalid JSON");
    }
  }
  try {
    return { value: packr().unpack(data), encoding: "msgpack" };
  } catch {
    throw new ExoError("parse_error", "parse error: invalid MessagePack");
  }
}

export function encodeFrame(value: unknown, encoding: Encoding): string | Uint8Array {
  return encoding === "json" ? JSON.stringify(value) : packr().pack(value);
}

export function packMsgpack(value: unknown): Uint8Array {
  return packr().pack(value);
}

export function unpackMsgpack(data: Uint8Array): unknown {
  return packr().unpack(data);
}
