/** Pure helpers of scripts/test.ts: JUnit and lcov parsing, executable-line counting, the closing line. */

export interface JunitCounts {
  tests: number;
  failed: number;
  skipped: number;
  /** Names of failed test cases, for the summary. */
  failures: string[];
}

const decode = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** Counts test cases one by one (not the top-level attributes, which a crash can leave wrong). */
export function parseJunit(xml: string): JunitCounts {
  const counts: JunitCounts = { tests: 0, failed: 0, skipped: 0, failures: [] };
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    counts.tests++;
    const body = m[2] ?? "";
    if (/<(failure|error)\b/.test(body)) {
      counts.failed++;
      const name = /\bname="([^"]*)"/.exec(m[1] ?? "")?.[1] ?? "?";
      const file = /\bfile="([^"]*)"/.exec(m[1] ?? "")?.[1] ?? "";
      counts.failures.push(`${file} > ${decode(name)}`);
    } else if (/<skipped\b/.test(body)) counts.skipped++;
  }
  return counts;
}

/** Line hits per source file from lcov: file → {found, hit}. */
export function parseLcov(lcov: string): Map<string, { found: number; hit: number }> {
  const out = new Map<string, { found: number; hit: number }>();
  let file = "";
  let found = 0;
  let hit = 0;
  for (const line of lcov.split("\n")) {
    if (line.startsWith("SF:")) {
      file = line.slice(3);
      found = 0;
      hit = 0;
    } else if (line.startsWith("DA:")) {
      found++;
      if (Number(line.split(",")[1]) > 0) hit++;
    } else if (line === "end_of_record" && file) {
      out.set(file, { found, hit });
      file = "";
    }
  }
  return out;
}

/**
 * Approximate executable lines of a TypeScript file no test imported: non-blank lines that are not
 * comments, lone braces, imports, or type-only declarations. Errs on counting more, not fewer.
 */
export function executableLines(source: string): number {
  let n = 0;
  let inBlockComment = false;
  let inType = false;
  for (const raw of source.split("\n")) {
    const line = raw.trim();
    if (inBlockComment) {
      if (line.includes("*/")) inBlockComment = false;
      continue;
    }
    if (line.startsWith("/*")) {
      if (!line.includes("*/")) inBlockComment = true;
      continue;
    }
    if (inType) {
      if (/^[}\]);]+;?$/.test(line) && !raw.startsWith("  ")) inType = false;
      continue;
    }
    if (/^(export\s+)?(interface|type)\s/.test(line)) {
      if (line.endsWith("{") || line.endsWith("=")) inType = true;
      continue;
    }
    if (line === "" || line.startsWith("//") || /^[{}()[\];,]+$/.test(line) || /^(import|export)\s.*from\s/.test(line) || /^import\s/.test(line)) continue;
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

export function coverageTotal(rows: CoverageRow[]): number {
  const found = rows.reduce((a, r) => a + r.found, 0);
  const hit = rows.reduce((a, r) => a + r.hit, 0);
  return found === 0 ? 100 : (100 * hit) / found;
}

/** The closing line CI reads. */
export function closingLine(passed: number, failed: number, skipped: number): string {
  return `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
}
