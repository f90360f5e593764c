/**
 * Stream framing for provider responses: Server-Sent Events (through eventsource-parser) and
 * NDJSON. Chunks may split anywhere — inside a JSON value, inside a multi-byte UTF-8 character,
 * between `data:` and the blank line — so bytes are decoded with a streaming TextDecoder first.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

async function* decoded(body: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder("utf-8");
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text) yield text;
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } finally {
    reader.releaseLock();
  }
}

/** SSE events of a response body, in order. Throws what the body read throws (abort, reset). */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncIterable<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => void queue.push(e) });
  for await (const text of decoded(body)) {
    parser.feed(text);
    while (queue.length > 0) yield queue.shift()!;
  }
  // A last event not followed by a blank line still counts (some servers end that way).
  parser.feed("\n\n");
  while (queue.length > 0) yield queue.shift()!;
}

/** Non-empty lines of an NDJSON body, in order. */
export async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncIterable<string> {
  let buf = "";
  for await (const text of decoded(body)) {
    buf += text;
    let nl: number;
    while ((nl = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buf.trim()) yield buf.trim();
}
