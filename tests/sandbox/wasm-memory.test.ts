import { describe, expect, test } from "bun:test";
import { capMemory, readMemoryLimits } from "../../src/sandbox/wasm-memory.ts";

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** A module with one memory (limits as given) and an exported function after it. */
function moduleWith(memory: number[] | null, importMemory = false): Uint8Array {
  const bytes = [...HEADER];
  // type section: one type () -> ()
  bytes.push(0x01, 0x04, 0x01, 0x60, 0x00, 0x00);
  if (importMemory) bytes.push(0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01);
  // function section: one function of type 0
  bytes.push(0x03, 0x02, 0x01, 0x00);
  if (memory) bytes.push(0x05, memory.length + 1, 0x01, ...memory);
  // export section: "f" -> func 0
  bytes.push(0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00);
  // code section: one empty body
  bytes.push(0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  return new Uint8Array(bytes);
}

describe("wasm memory limits", () => {
  test("reads min and max", () => {
    expect(readMemoryLimits(moduleWith([0x00, 0x02]))).toEqual({ min: 2, max: null });
    expect(readMemoryLimits(moduleWith([0x01, 0x01, 0x80, 0x02]))).toEqual({ min: 1, max: 256 });
    expect(readMemoryLimits(moduleWith(null))).toBeNull();
  });

  test("adds a maximum to a module without one, and the engine enforces it", () => {
    const { bytes, limits } = capMemory(moduleWith([0x00, 0x01]), 16);
    expect(limits).toEqual({ min: 1, max: 16 });
    expect(readMemoryLimits(bytes)).toEqual({ min: 1, max: 16 });
    expect(WebAssembly.validate(bytes)).toBe(true);
    const mod = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(["f"]);
  });

  test("lowers a maximum above the grant and keeps one below it", () => {
    expect(readMemoryLimits(capMemory(moduleWith([0x01, 0x01, 0x80, 0x08]), 32).bytes)).toEqual({ min: 1, max: 32 });
    const small = moduleWith([0x01, 0x01, 0x04]);
    expect(capMemory(small, 32).bytes).toBe(small);
  });

  test("refuses what cannot be capped", () => {
    expect(() => capMemory(moduleWith([0x00, 0x40]), 16)).toThrow(
      /needs 4096 KiB of memory at start, more than its grant of 1024 KiB/,
    );
    expect(() => readMemoryLimits(moduleWith([0x03, 0x01, 0x02]))).toThrow(/shared memories/);
    expect(() => readMemoryLimits(moduleWith(null, true))).toThrow(/imports its memory/);
    expect(() => readMemoryLimits(new TextEncoder().encode("#!/bin/sh\necho not wasm"))).toThrow(/not a wasm module/);
    expect(() => readMemoryLimits(new Uint8Array([...HEADER, 0x05, 0x7f]))).toThrow(/past the end/);
  });
});
