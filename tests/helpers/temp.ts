import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp directory removed on dispose. */
export interface TempDir extends Disposable {
  path: string;
  /** Writes `text` to `name` inside the directory; returns the file's path. */
  file(name: string, text: string): string;
}

export function tempDir(prefix = "exoclaw-test-"): TempDir {
  return dirHandle(mkdtempSync(join(tmpdir(), prefix)), true);
}

/** A handle on an existing directory that is left in place on dispose. */
export function keptDir(path: string): TempDir {
  return dirHandle(path, false);
}

function dirHandle(path: string, remove: boolean): TempDir {
  return {
    path,
    file(name, text) {
      const p = join(path, name);
      writeFileSync(p, text);
      return p;
    },
    [Symbol.dispose]() {
      if (remove) rmSync(path, { recursive: true, force: true });
    },
  };
}
