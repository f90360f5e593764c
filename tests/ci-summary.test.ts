import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  closingLine,
  coverageTotal,
  executableLines,
  parseBunSummary,
  parseJunit,
  parseLcov,
  runningFile,
} from "../scripts/_summary.ts";
import { tempDir } from "./helpers/temp.ts";

// As bun 1.4.5 writes it (--reporter=junit), with nested describe suites.
const junit = (root: string, cases: string) => `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="bun test" ${root}>
  <testsuite name="tests/t.test.ts" file="tests/t.test.ts" tests="5">
    <testsuite name="grp" file="tests/t.test.ts" line="2" tests="5">
${cases}
    </testsuite>
  </testsuite>
</testsuites>`;

describe("test command summary", () => {
  test("counts failed, errored and skipped test cases one by one", () => {
    const xml = junit(
      `tests="5" failures="2" skipped="2"`,
      `<testcase name="a" classname="grp" file="tests/t.test.ts" line="3" assertions="1" />
      <testcase name="b &amp; &quot;c&quot; &gt; /&gt;" classname="grp" file="tests/t.test.ts" line="4"><failure type="AssertionError" message="x">AssertionError: x&#10;</failure></testcase>
      <testcase name="d" classname="grp" file="tests/t.test.ts" line="5"><skipped /></testcase>
      <testcase name="e" classname="grp" file="tests/t.test.ts" line="6"><skipped message="TODO" /></testcase>
      <testcase name="f" classname="grp" file="tests/t.test.ts" line="7"><error message="boom" /></testcase>`,
    );
    expect(parseJunit(xml)).toEqual({
      tests: 5,
      failed: 2,
      skipped: 2,
      failures: ['tests/t.test.ts > b & "c" > />', "tests/t.test.ts > f"],
      notes: [],
    });
  });

  test("the per-case data wins over a root that claims no failure, and vice versa", () => {
    const failing = `<testcase name="a" file="t.ts"><failure message="x" /></testcase>`;
    expect(parseJunit(junit(`tests="1" failures="0"`, failing)).failed).toBe(1);
    const passing = `<testcase name="a" file="t.ts" />`;
    const c = parseJunit(junit(`tests="2" failures="1"`, passing));
    expect(c.failed).toBe(1);
    expect(c.notes.length).toBe(2);
  });

  test("a truncated or foreign report is refused, not read as zero failures", () => {
    const whole = junit(`tests="1" failures="1"`, `<testcase name="a" file="t.ts"><failure /></testcase>`);
    expect(() => parseJunit(whole.slice(0, whole.indexOf("</testsuites>")))).toThrow("not a complete JUnit report");
    expect(() => parseJunit("")).toThrow();
  });

  test("bun's own counts, coloured or not, for failures the report leaves out", () => {
    const plain = "\n 3 pass\n 1 skip\n 2 fail\n 1 error\n 9 expect() calls\nRan 6 tests across 2 files. [15.00ms]\n";
    expect(parseBunSummary(plain)).toEqual({ pass: 3, fail: 2, error: 1 });
    const coloured = "\x1b[0m\x1b[32m 4 pass\x1b[0m\n\x1b[0m\x1b[31m 0 fail\x1b[0m\nRan 4 tests across 1 file.\n";
    expect(parseBunSummary(coloured)).toEqual({ pass: 4, fail: 0, error: 0 });
    expect(parseBunSummary("No tests found!")).toBeNull();
  });

  test("lcov hits per file, and an unimported file lowers the total", () => {
    const lcov = parseLcov(
      "TN:\r\nSF:src/a.ts\r\nDA:1,1\r\nDA:2,0\r\nDA:3,4\r\nLF:3\r\nLH:2\r\nend_of_record\r\nSF:src/b.ts\nLF:1\nLH:1\nend_of_record\n",
    );
    expect(lcov.get("src/a.ts")).toEqual({ found: 3, hit: 2 });
    expect(lcov.get("src/b.ts")).toEqual({ found: 1, hit: 1 });
    const rows = [...lcov].map(([file, h]) => ({ file, ...h, imported: true }));
    expect(coverageTotal(rows)).toBe(75);
    expect(coverageTotal([...rows, { file: "src/c.ts", found: 4, hit: 0, imported: false }])).toBe(37.5);
    expect(coverageTotal([])).toBe(100);
  });

  test("executable lines: code counts; comments, types, imports of types and block ends do not", () => {
    const source = [
      "/** doc", // not counted: comment
      " * more */",
      'import type { A } from "./a.ts";',
      'import { b } from "./b.ts";', // 1
      "import {",
      "  c,",
      "  d,",
      '} from "./c.ts";', // import list: 1 (its first line)
      "// line comment",
      "export interface I {",
      "  x: string;",
      "}",
      "export type Mode =",
      '  | { kind: "a" }',
      '  | { kind: "b" };',
      "export const SQL = `SELECT", // 1
      "  * FROM t`;",
      "",
      "export function f(", // 1
      "  x: number,", // 1
      "): number {",
      "  if (x > 0) {", // 1
      "    return b(x);", // 1
      "  }",
      "  return c + d;", // 1
      "}",
      "type Tail = string", // no `;`: ends at the next line flush left
      "export const y = 1;", // 1
    ].join("\n");
    expect(executableLines(source)).toBe(9);
    expect(executableLines("")).toBe(0);
  });

  test("the closing line is exactly what CI reads", () => {
    expect(closingLine(10, 0, 0)).toBe("10 passed, 0 failed");
    expect(closingLine(8, 2, 1)).toBe("8 passed, 2 failed, 1 skipped");
    expect(closingLine(0, 1, 0)).toMatch(/^\d+ passed, \d+ failed$/);
  });
});

describe("the test command cannot hang or hide a failure", () => {
  test("runningFile names the last file bun started, coloured or not", () => {
    expect(runningFile("bun test v1.4.5\n\ntests/a.test.ts:\n(pass) x\n\n\x1b[1mtests/b/c.test.ts:\x1b[0m\n")).toBe(
      "tests/b/c.test.ts",
    );
    expect(runningFile("bun test v1.4.5\n")).toBeNull();
  });

  /** scripts/test.ts run on a tiny project of its own: `files` under tests/. */
  const run = async (files: Record<string, string>, env: Record<string, string> = {}) => {
    const dir = tempDir();
    mkdirSync(join(dir.path, "scripts"));
    mkdirSync(join(dir.path, "tests"));
    for (const f of ["test.ts", "_summary.ts"])
      copyFileSync(join(import.meta.dir, "../scripts", f), join(dir.path, "scripts", f));
    symlinkSync(join(import.meta.dir, "../node_modules"), join(dir.path, "node_modules"));
    const options = {
      module: "Preserve",
      moduleResolution: "bundler",
      types: ["bun"],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
    };
    writeFileSync(join(dir.path, "tsconfig.json"), JSON.stringify({ compilerOptions: options, include: ["tests"] }));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, "tests", name), text);
    const env0: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: dir.path, ...env };
    const p = Bun.spawn(
      [process.execPath, join(dir.path, "scripts/test.ts"), ...Object.keys(files).map((f) => `tests/${f}`)],
      { cwd: dir.path, env: env0, stdout: "pipe", stderr: "pipe" },
    );
    const [out] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    const code = await p.exited;
    dir[Symbol.dispose]();
    return { code, out, last: out.trim().split("\n").at(-1) };
  };

  test("a file stuck in its top-level await fails the run and is named; what it started is stopped", async () => {
    const marker = `exoclaw-hang-${process.pid}-${Date.now()}`;
    const r = await run(
      {
        "stuck.test.ts": `import { test } from "bun:test";\nBun.spawn(["sh", "-c", "exec -a ${marker} sleep 300"]);\nawait new Promise(() => {});\ntest("never", () => {});\n`,
      },
      { EXOCLAW_TEST_IDLE_S: "3" },
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain("bun test hung: no output for 3 s; still running: tests/stuck.test.ts");
    expect(r.last).toMatch(/^\d+ passed, [1-9]\d* failed$/);
    expect(Bun.spawnSync(["pgrep", "-f", marker]).exitCode).toBe(1); // no process left behind
  }, 60_000);

  test("a stray test.only cannot hide its failing neighbour", async () => {
    const r = await run(
      {
        "only.test.ts":
          'import { expect, test } from "bun:test";\ntest.only("one", () => {});\ntest("hidden", () => expect(1).toBe(2));\n',
      },
      { CI: "" },
    );
    expect(r.code).toBe(1);
    expect(r.last).toMatch(/^\d+ passed, [1-9]\d* failed$/);
  }, 60_000);

  test("a partial run says in its closing lines that it skipped the coverage gate", async () => {
    const r = await run({
      "ok.test.ts": 'import { expect, test } from "bun:test";\ntest("fine", () => expect(1).toBe(1));\n',
    });
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines.at(-2)).toBe("note: a partial run (bun test arguments given) skips the coverage gate");
    expect(r.last).toBe("2 passed, 0 failed");
  }, 60_000);
});
