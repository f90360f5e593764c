import { describe, expect, test } from "bun:test";
import { ndjsonLines, type SseEvent, sseEvents } from "../../../src/agent/sse.ts";
import { awkwardChunks, cutsInsideCharacter } from "../../helpers/fake-upstream.ts";

const enc = new TextEncoder();

function body(chunks: Uint8Array[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]!);
      else c.close();
    },
    cancel: () => onCancel?.(),
  });
}
/** Every way to cut `bytes` in two, plus one byte at a time. */
function splits(text: string): Uint8Array[][] {
  const bytes = enc.encode(text);
  const out = [[...bytes].map((b) => Uint8Array.of(b))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  return out;
}
const all = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

// Named and unnamed events, CRLF and LF, a comment, multi-line data, 2/3/4-byte characters.
const SAMPLE =
  'event: message_start\ndata: {"t":"Grüße"}\n\n' +
  ": keep-alive comment\n\n" +
  'data: {"text":"東京 🦀"}\r\n\r\n' +
  "event: multi\ndata: line one\ndata: line two é\n\n" +
  "data: [DONE]\n\n";
const EXPECTED: SseEvent[] = [
  { event: "message_start", data: '{"t":"Grüße"}' },
  { event: undefined, data: '{"text":"東京 🦀"}' },
  { event: "multi", data: "line one\nline two é" },
  { event: undefined, data: "[DONE]" },
];

describe("sseEvents", () => {
  test("gives the same events however the bytes are chunked (inside JSON, inside characters, between data: and the blank line)", async () => {
    for (const chunks of splits(SAMPLE)) expect(await all(sseEvents(body(chunks)))).toEqual(EXPECTED);
    expect(await all(sseEvents(body(awkwardChunks(SAMPLE))))).toEqual(EXPECTED);
  });

  test("accepts a Response too", async () => {
    expect(await all(sseEvents(new Response(body(awkwardChunks(SAMPLE)))))).toEqual(EXPECTED);
  });

  test("a last event missing only its blank line counts; a line cut off by the end of the body does not", async () => {
    expect(await all(sseEvents(body([enc.encode("data: a\n\ndata: b\n")])))).toEqual([
      { event: undefined, data: "a" },
      { event: undefined, data: "b" },
    ]);
    expect(await all(sseEvents(body([enc.encode('data: a\n\ndata: {"cut')])))).toEqual([
      { event: undefined, data: "a" },
    ]);
  });

  test("a body that fails mid-stream rejects (the provider turns that into an error event)", async () => {
    let n = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ === 0) c.enqueue(enc.encode("data: a\n\n"));
        else c.error(new Error("ECONNRESET"));
      },
    });
    const seen: SseEvent[] = [];
    await expect(
      (async () => {
        for await (const e of sseEvents(failing)) seen.push(e);
      })(),
    ).rejects.toThrow("ECONNRESET");
    expect(seen).toEqual([{ event: undefined, data: "a" }]);
  });

  test("a consumer that stops early cancels the body, releasing the connection", async () => {
    let cancelled = false;
    for await (const _ of sseEvents(body(awkwardChunks(SAMPLE), () => (cancelled = true)))) break;
    expect(cancelled).toBe(true);
  });
});

describe("ndjsonLines", () => {
  const NDJSON = '{"message":{"content":"Grüße 🦀"},"done":false}\n\n{"a":"東京"}\r\n{"done":true}\n';
  const LINES = ['{"message":{"content":"Grüße 🦀"},"done":false}', '{"a":"東京"}', '{"done":true}'];

  test("gives the same lines however the bytes are chunked; blank lines skipped, CRLF trimmed", async () => {
    for (const chunks of splits(NDJSON)) expect(await all(ndjsonLines(body(chunks)))).toEqual(LINES);
  });

  test("an unterminated last line is kept when it is whole JSON, dropped when it was cut off", async () => {
    expect(await all(ndjsonLines(body([enc.encode('{"a":1}\n{"done":true}')])))).toEqual(['{"a":1}', '{"done":true}']);
    expect(await all(ndjsonLines(body([enc.encode('{"a":1}\n{"done":tr')])))).toEqual(['{"a":1}']);
  });
});

describe("awkwardChunks (the fake upstream's splitter)", () => {
  test("loses nothing, and cuts inside characters, right after data: and between a line end and the blank line", () => {
    const chunks = awkwardChunks(SAMPLE);
    expect(new TextDecoder().decode(Buffer.concat(chunks))).toBe(SAMPLE);
    expect(cutsInsideCharacter(chunks)).toBe(true);
    const text = chunks.map((c) => Buffer.from(c).toString("latin1"));
    expect(text.some((t) => t.endsWith("data:"))).toBe(true);
    expect(text.some((t, i) => t.endsWith("\n") && !t.endsWith("\n\n") && text[i + 1]?.startsWith("\n"))).toBe(true);
    // Every multi-byte character is split, not just one of them.
    const cuts = new Set(chunks.map((_, i) => chunks.slice(0, i).reduce((n, c) => n + c.length, 0)));
    let at = 0;
    for (const ch of SAMPLE) {
      const len = enc.encode(ch).length;
      if (len > 1) expect([...cuts].some((c) => c > at && c < at + len)).toBe(true);
      at += len;
    }
  });
});
