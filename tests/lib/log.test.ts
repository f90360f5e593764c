import { describe, expect, test } from "bun:test";
import { createLogger, scrub } from "../../src/lib/log.ts";

describe("logger", () => {
  test("writes one JSON object per line with level, msg and fields", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (l) => lines.push(l), now: () => new Date(0) });
    log.info("hello", { n: 1 });
    log.debug("dropped");
    expect(lines).toEqual(['{"ts":"1970-01-01T00:00:00.000Z","level":"info","msg":"hello","n":1}']);
  });

  test("never writes a secret: registered values are scrubbed, secret-looking keys masked", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (l) => lines.push(l), secrets: ["tok-123456"] }).child({
      conn: "c1",
    });
    log.warn("bad token tok-123456 seen", {
      token: "anything",
      nested: { api_key: "sk-abc", url: "http://x/?t=tok-123456" },
      err: new Error("boom tok-123456"),
    });
    const text = lines.join("\n");
    expect(text).not.toContain("tok-123456");
    expect(text).not.toContain("sk-abc");
    const obj = JSON.parse(lines[0]!);
    expect(obj).toMatchObject({
      level: "warn",
      conn: "c1",
      token: "***",
      nested: { api_key: "***", url: "http://x/?t=***" },
      err: "boom ***",
    });
  });

  test("pretty format is one human line", () => {
    const lines: string[] = [];
    createLogger({ format: "pretty", write: (l) => lines.push(l), now: () => new Date(0) }).error("failed", {
      port: 1,
    });
    expect(lines).toEqual(["00:00:00 ERROR failed port=1"]);
  });

  test("scrub ignores very short secrets", () => {
    expect(scrub("a b c", ["a"])).toBe("a b c");
  });
});
