/**
 * Stream framing for provider responses: Server-Sent Events (through eventsource-parser) and
 * NDJSON. Proxies re-chunk streams, so a chunk may end anywhere — inside a JSON value, inside a
 * multi-byte UTF-8 character, between `data:` and the blank line — and bytes go through one
 * streaming TextDecoder before any framing is looked at.
 */
import { createParser } from "eventsource-parser";

/** One SSE event. `event` is undefined when the server sent no `event:` line (OpenAI, Gemini). */
export interface SseEvent {
  event: string | undefined;
  data: string;
}

type Body = Response | ReadableStream<Uint8Array>;

function streamOf(source: Body): ReadableStream<Uint8Array> {
  const body = source instanceof Response ? source.body : source;
  // Only a HEAD or 204 response has no body; a provider stream never should.
  if (!body) throw new TypeError("response has no body");
  return body;
}

/**
 * The body as decoded text pieces. When the consumer stops early (break, a thrown error) the body
 * is cancelled, so the HTTP connection is released instead of left half-read.
 */
async function* decodedText(source: Body): AsyncGenerator<string> {
  const reader = streamOf(source).getReader();
  const decoder = new TextDecoder("utf-8");
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text) yield text;
    }
    finished = true;
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  // A character cut by the end of the body decodes to U+FFFD rather than vanishing.
  const rest = decoder.decode();
  if (rest) yield rest;
}

/**
 * SSE events of a response body, in order. Rejects with whatever reading the body rejects with
 * (an AbortError, a connection reset). A last event whose lines are complete but lack the final
 * blank line still counts; a line cut off by the end of the body is a truncated write and is
 * dropped (the caller then sees no end marker and reports "stream ended early").
 */
export async function* sseEvents(source: Body): AsyncGenerator<SseEvent> {
  const queue: SseEvent[] = [];
  const parser = createParser({ onEvent: (e) => void queue.push({ event: e.event, data: e.data }) });
  let last = "";
  for await (const text of decodedText(source)) {
    parser.feed(text);
    last = text.at(-1) ?? last;
    while (queue.length > 0) yield queue.shift()!;
  }
  if (last === "\n" || last === "\r") parser.feed("\n\n");
  while (queue.length > 0) yield queue.shift()!;
}

/**
 * Non-empty lines of an NDJSON body (trimmed), in order. Rejects like `sseEvents`. Every line of
 * NDJSON ends with `\n`; an unterminated tail is kept only if it is a whole JSON value (a server
 * that forgot the last newline), and dropped if it is a truncated write.
 */
export async function* ndjsonLines(source: Body): AsyncGenerator<string> {
  let buf = "";
  for await (const text of decodedText(source)) {
    buf += text;
    let nl: number;
    while ((nl = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  const tail = buf.trim();
  if (tail && isJson(tail)) yield tail;
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
