/** Pure helpers of scripts/test.ts: JUnit, bun-summary and lcov parsing, executable-line counting, the closing line. */

export interface JunitCounts {
  tests: number;
  failed: number;
  skipped: number;
  /** `file > name` of each failed test case, for the summary. */
  failures: string[];
  /** Disagreements between the per-case counts and the root element's totals. */
  notes: string[];
}

const decode = (s: string) =>
  s
    .replace(/&#10;/g, "\n")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
const attr = (attrs: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(attrs)?.[1];

/**
 * Counts <testcase> elements one by one: a <failure> or <error> inside one is a failure, a <skipped>
 * (skip or todo) a skip. The root's totals are only a cross-check: when they claim more failures
 * than the cases show, the larger number wins. Throws on a report that is not a whole <testsuites>.
 */
export function parseJunit(xml: string): JunitCounts {
  const root = /<testsuites\b([^>]*)>/.exec(xml);
  if (!root || !xml.includes("</testsuites>"))
    throw new Error("not a complete JUnit report (no <testsuites>…</testsuites>)");
  const c: JunitCounts = { tests: 0, failed: 0, skipped: 0, failures: [], notes: [] };
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = m[1] ?? "";
    const body = m[2] ?? "";
    c.tests++;
    if (/<(failure|error)\b/.test(body)) {
      c.failed++;
      c.failures.push(`${decode(attr(attrs, "file") ?? "?")} > ${decode(attr(attrs, "name") ?? "?")}`);
    } else if (/<skipped\b/.test(body)) c.skipped++;
  }
  const declared = (name: string) => Number(attr(root[1] ?? "", name) ?? Number.NaN);
  const [tests, failures] = [declared("tests"), declared("failures") + (declared("errors") || 0)];
  if (tests !== c.tests) c.notes.push(`the report's root says ${tests} tests, its test cases number ${c.tests}`);
  if (failures > c.failed) {
    c.notes.push(
      `the report's root says ${failures} failures, only ${c.failed} test cases show one: counting ${failures}`,
    );
    c.failed = failures;
  }
  return c;
}

/** Bun's own closing counts (`N pass` / `N fail` / `N error`), the last ones in its stderr, ANSI colours removed. */
export function parseBunSummary(stderr: string): { pass: number; fail: number; error: number } | null {
  const text = stderr.replace(/\x1b\[[0-9;]*m/g, "");
  const last = (word: string) => [...text.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\s*$`, "gm"))].at(-1)?.[1];
  const [pass, fail, error] = [last("pass"), last("fail"), last("errors?")];
  return pass === undefined || fail === undefined
    ? null
    : { pass: Number(pass), fail: Number(fail), error: Number(error ?? 0) };
}

/** Line hits per source file from lcov: file → {found, hit}, from DA lines (LF/LH when a record has none). */
export function parseLcov(lcov: string): Map<string, { found: number; hit: number }> {
  const out = new Map<string, { found: number; hit: number }>();
  let file = "";
  let [found, hit, lf, lh] = [0, 0, 0, 0];
  for (const line of lcov.split(/\r?\n/)) {
    if (line.startsWith("SF:")) [file, found, hit, lf, lh] = [line.slice(3), 0, 0, 0, 0];
    else if (line.startsWith("DA:")) {
      found++;
      if (Number(line.split(",")[1]) > 0) hit++;
    } else if (line.startsWith("LF:")) lf = Number(line.slice(3));
    else if (line.startsWith("LH:")) lh = Number(line.slice(3));
    else if (line === "end_of_record" && file) {
      out.set(file, found > 0 ? { found, hit } : { found: lf, hit: lh });
      file = "";
    }
  }
  return out;
}

/**
 * Approximate count of the lines bun's coverage would report for a TypeScript file no test imported
 * (checked against bun's lcov for this repo's tested files: totals agree within 1%). Not counted: blank lines,
 * comments, lone `}` / `},` closing a block, the inner lines of multi-line template literals and of
 * multi-line import/export lists, `) {` ending a multi-line parameter list, `import type` /
 * `export type {…}`, type aliases, interfaces and `declare` blocks. Everything else counts.
 */
export function executableLines(source: string): number {
  let n = 0;
  let comment = false; // inside /* … */
  let template = false; // inside a multi-line `…`
  let list = false; // inside a multi-line import/export { … } list
  let typeDepth = -1; // ≥ 0 while inside a type-only declaration: its bracket depth
  for (const raw of source.split(/\r?\n/)) {
    const line = raw.trim();
    if (comment) {
      comment = !line.includes("*/");
      continue;
    }
    if (template) {
      template = (line.match(/(?<!\\)`/g)?.length ?? 0) % 2 === 0;
      continue;
    }
    if (list) {
      list = !line.startsWith("}");
      continue;
    }
    if (typeDepth >= 0) {
      // A declaration without a closing `;` ends at the next line that starts flush left.
      if (typeDepth === 0 && /^[^\s|&})\]>]/.test(raw)) typeDepth = -1;
      else {
        typeDepth += (line.match(/[{([]/g)?.length ?? 0) - (line.match(/[})\]]/g)?.length ?? 0);
        if (typeDepth <= 0 && /;$|^}$/.test(line)) typeDepth = -1;
        continue;
      }
    }
    if (line === "" || line.startsWith("//") || line === "}" || line === "},") continue;
    if (line.startsWith("/*")) {
      comment = !line.includes("*/");
      continue;
    }
    if (/^(export\s+)?(declare\s|interface\s|type\s+[\w{])|^import\s+type\s/.test(line)) {
      typeDepth = (line.match(/[{([]/g)?.length ?? 0) - (line.match(/[})\]]/g)?.length ?? 0);
      if (typeDepth <= 0 && /;$|^}$/.test(line)) typeDepth = -1;
      continue;
    }
    if (/^\)(\s*:.*)?\s*\{\}?$/.test(line)) continue; // `): T {` closing a multi-line parameter list
    if (/^(import\s[^"'`]*|export\s+)\{[^}]*$/.test(line)) list = true;
    if ((line.match(/(?<!\\)`/g)?.length ?? 0) % 2 === 1) template = true;
    n++;
  }
  return n;
}

export interface CoverageRow {
  file: string;
  found: number;
  hit: number;
  imported: boolean;
}

/** Line coverage in percent over all rows (100 when there is nothing to cover). */
export function coverageTotal(rows: CoverageRow[]): number {
  const found = rows.reduce((a, r) => a + r.found, 0);
  const hit = rows.reduce((a, r) => a + r.hit, 0);
  return found === 0 ? 100 : (100 * hit) / found;
}

/** The closing line CI reads. */
export function closingLine(passed: number, failed: number, skipped: number): string {
  return `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
}

/**
 * The test file bun is running: the last file header (`tests/x.test.ts:`) it printed on stderr,
 * colours stripped. bun prints the header when a file starts, so a file stuck in its top-level
 * await is the last one named.
 */
export function runningFile(stderr: string): string | null {
  let last: string | null = null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes
  for (const line of stderr.replace(/\x1b\[[0-9;]*m/g, "").split("\n")) {
    const m = /^(\S+\.(?:test|spec)\.[cm]?[jt]sx?):$/.exec(line.trim());
    if (m) last = m[1]!;
  }
  return last;
}
