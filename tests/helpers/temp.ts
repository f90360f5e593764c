import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp directory removed on dispose. */
export function tempDir(prefix = "exoclaw-test-"): { path: string; file(name: string, text: string): string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file(name, text) {
      const p = join(path, name);
      writeFileSync(p, text);
      return p;
    },
    [Symbol.dispose]() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}
