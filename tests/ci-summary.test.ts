import { describe, expect, test } from "bun:test";
import { closingLine, coverageTotal, executableLines, parseJunit, parseLcov } from "../scripts/_summary.ts";

describe("test command summary", () => {
  test("counts failed and skipped test cases one by one", () => {
    const xml = `<testsuites tests="4" failures="0">
      <testcase name="a" file="t.ts" />
      <testcase name="b &amp; c" file="t.ts"><failure message="x" /></testcase>
      <testcase name="d" file="u.ts"><skipped /></testcase>
      <testcase name="e" file="u.ts"><error message="boom" /></testcase>
    </testsuites>`;
    expect(parseJunit(xml)).toEqual({ tests: 4, failed: 2, skipped: 1, failures: ["t.ts > b & c", "u.ts > e"] });
  });

  test("lcov hits per file, and an unimported file lowers the total", () => {
    const lcov = parseLcov("SF:src/a.ts\nDA:1,1\nDA:2,0\nDA:3,4\nend_of_record\nSF:src/b.ts\nDA:1,1\nend_of_record\n");
    expect(lcov.get("src/a.ts")).toEqual({ found: 3, hit: 2 });
    const rows = [...lcov].map(([file, h]) => ({ file, ...h, imported: true }));
    expect(coverageTotal(rows)).toBe(75);
    const unimported = executableLines("import x from 'y';\n// c\n/** doc\n * more */\nexport interface A {\n  a: string;\n}\nexport function f() {\n  return 1;\n}\n");
    expect(unimported).toBe(2);
    expect(coverageTotal([...rows, { file: "src/c.ts", found: unimported, hit: 0, imported: false }])).toBe(50);
  });

  test("the closing line is exactly what CI reads", () => {
    expect(closingLine(10, 0, 0)).toBe("10 passed, 0 failed");
    expect(closingLine(8, 2, 1)).toBe("8 passed, 2 failed, 1 skipped");
  });
});
