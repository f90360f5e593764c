/**
 * The whole test command (`npm test`): typecheck, every test with JUnit and lcov reports, and the
 * coverage gate, then one closing line `N passed, N failed` computed from the real results.
 *
 * Why not bun test alone: its summary (` 12 pass` / ` 0 fail`) is not a line CI recognises, and its
 * per-file coverage threshold ignores files no test imports and fails with no message. Here the
 * typecheck and the gate each count as one check, and a crash outside any test (a file that does
 * not load, an error between tests, no report at all) counts as a failure, so a broken run can
 * never look green. The closing line is the last line on stdout.
 *
 *   bun scripts/test.ts [bun test args, e.g. tests/gateway]   (a partial run skips the coverage gate)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import {
  closingLine,
  type CoverageRow,
  coverageTotal,
  executableLines,
  type JunitCounts,
  parseBunSummary,
  parseJunit,
  parseLcov,
  runningFile,
} from "./_summary.ts";

/** Minimum line coverage of src/, in percent, counting files no test imports as uncovered. */
const COVERAGE_MIN = 80;
/** src/ files left out of the gate (path → reason). Every entry needs a reason; none so far. */
const COVERAGE_EXCLUDE: Record<string, string> = {};

const ROOT = join(import.meta.dir, "..");
const args = process.argv.slice(2);
const partial = args.length > 0;
const checks: { name: string; ok: boolean }[] = [];
const problems: string[] = []; // failures outside any test case, each counted once

console.log("== typecheck (tsc --noEmit -p .)");
const tsc = await Bun.spawn([join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "."], {
  cwd: ROOT,
  stdio: ["ignore", "inherit", "inherit"],
}).exited;
checks.push({ name: "typecheck", ok: tsc === 0 });
console.log(tsc === 0 ? "typecheck: ok" : `typecheck: FAILED (tsc exited ${tsc})`);

// Formatting (Biome, settings in biome.json): checked, never rewritten here; `npx biome format --write .` fixes it.
if (existsSync(join(ROOT, "biome.json"))) {
  console.log("== format (biome format .)");
  const fmt = await Bun.spawn([join(ROOT, "node_modules/.bin/biome"), "format", "--reporter=summary", "."], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  }).exited;
  checks.push({ name: "format", ok: fmt === 0 });
  console.log(fmt === 0 ? "format: ok" : "format: FAILED (run `npx biome format --write .`)");
}

console.log("== bun test");
const junitPath = join(ROOT, ".cache/junit.xml");
mkdirSync(join(ROOT, ".cache"), { recursive: true }); // bun does not create the report's folder
rmSync(junitPath, { force: true });
rmSync(join(ROOT, "coverage"), { recursive: true, force: true });
// CI=true makes bun refuse a stray test.only (without it, .only silently skips its neighbours).
// Its own process group, so a hang can be stopped with every server and child it started.
const bunTest = Bun.spawn(
  [
    process.execPath,
    "test",
    "--timeout=30000",
    "--coverage",
    "--coverage-reporter=text",
    "--coverage-reporter=lcov",
    "--reporter=junit",
    `--reporter-outfile=${junitPath}`,
    ...args,
  ],
  {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "inherit",
    stderr: "pipe",
    detached: true,
    env: { ...process.env, CI: "true", ...(process.stderr.isTTY && { FORCE_COLOR: "1" }) },
  },
);
const stopGroup = () => {
  try {
    process.kill(-bunTest.pid, "SIGKILL");
  } catch {
    // already gone
  }
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopGroup();
    process.exit(130);
  });
}
// bun test reports on stderr: pass it through live, and keep it to read bun's own counts.
let stderr = "";
const decoder = new TextDecoder();
// A test file whose top-level await never resolves would hang the run forever (bun's per-test
// timeout never starts): no output for IDLE, or the whole run past LIMIT, is a failure that names
// the file still running.
const IDLE_MS = Number(process.env.EXOCLAW_TEST_IDLE_S ?? 600) * 1000;
const LIMIT_MS = Number(process.env.EXOCLAW_TEST_LIMIT_S ?? 3600) * 1000;
const startedAt = Date.now();
let lastOutputAt = startedAt;
let hung: string | null = null;
const watchdog = setInterval(
  () => {
    const now = Date.now();
    const why =
      now - startedAt > LIMIT_MS
        ? `the run passed its ${LIMIT_MS / 1000} s limit`
        : now - lastOutputAt > IDLE_MS
          ? `no output for ${IDLE_MS / 1000} s`
          : null;
    if (why === null || hung !== null) return;
    const file = runningFile(stderr);
    hung = `${why}; still running: ${file ?? "(no test file started)"}`;
    console.log(`test run: stopping bun test — ${hung}`);
    stopGroup();
  },
  Math.min(5_000, IDLE_MS / 2),
);
const reading = (async () => {
  for await (const chunk of bunTest.stderr) {
    process.stderr.write(chunk);
    stderr += decoder.decode(chunk, { stream: true });
    lastOutputAt = Date.now();
  }
})();
const testExit = await bunTest.exited;
// A process that left bun's group could keep the pipe open: read what is left, then go on.
await Promise.race([reading, Bun.sleep(5_000)]);
clearInterval(watchdog);
if (hung !== null) problems.push(`bun test hung: ${hung}`);

let junit: JunitCounts = { tests: 0, failed: 0, skipped: 0, failures: [], notes: [] };
if (!existsSync(junitPath))
  problems.push("bun test wrote no JUnit report (a test file that did not load, or no test found: see above)");
else {
  try {
    junit = parseJunit(readFileSync(junitPath, "utf8"));
    for (const note of junit.notes) console.log(`junit: ${note}`);
  } catch (e) {
    problems.push(`the JUnit report ${relative(ROOT, junitPath)} is unreadable: ${(e as Error).message}`);
  }
}
// Cross-checks against bun's own counts and exit code; at most one problem for the run itself.
const outside = (parseBunSummary(stderr)?.fail ?? 0) - junit.failed;
if (problems.length === 0) {
  if (junit.tests === 0) problems.push("bun test ran no test");
  else if (outside > 0)
    problems.push(
      `${outside} failure${outside > 1 ? "s" : ""} outside any test case (a file that did not load, or an error between tests: see above)`,
    );
  else if (testExit !== 0 && junit.failed === 0)
    problems.push(`bun test exited ${testExit} with no failed test case (see above)`);
}

if (partial) console.log("coverage gate: skipped for a partial run (bun test arguments given)");
else {
  console.log(`== coverage gate (line coverage of src/ ≥ ${COVERAGE_MIN}%, files no test imports count as uncovered)`);
  const lcovPath = join(ROOT, "coverage/lcov.info");
  const lcov = existsSync(lcovPath)
    ? parseLcov(readFileSync(lcovPath, "utf8"))
    : new Map<string, { found: number; hit: number }>();
  if (!existsSync(lcovPath)) console.log("  no coverage/lcov.info: every src/ file counts as uncovered");
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? walk(join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")
          ? [join(dir, e.name)]
          : [],
    );
  const rows: CoverageRow[] = [];
  for (const abs of existsSync(join(ROOT, "src")) ? walk(join(ROOT, "src")).sort() : []) {
    const file = relative(ROOT, abs);
    if (COVERAGE_EXCLUDE[file] !== undefined) continue;
    const hits = lcov.get(file) ?? lcov.get(abs);
    rows.push(
      hits
        ? { file, ...hits, imported: true }
        : { file, found: executableLines(readFileSync(abs, "utf8")), hit: 0, imported: false },
    );
  }
  const pct = (r: CoverageRow) => (r.found === 0 ? 100 : (100 * r.hit) / r.found);
  const worst = rows.filter((r) => pct(r) < 100).sort((a, b) => pct(a) - pct(b) || b.found - a.found);
  if (worst.length > 0) console.log("  least covered:");
  for (const r of worst.slice(0, 10))
    console.log(
      `  ${pct(r).toFixed(1).padStart(6)}%  ${String(r.hit).padStart(4)}/${String(r.found).padEnd(4)} ${r.file}`,
    );
  for (const r of rows.filter((x) => !x.imported))
    console.log(`  not imported by any test: ${r.file} (${r.found} executable lines)`);
  for (const [file, why] of Object.entries(COVERAGE_EXCLUDE)) console.log(`  excluded: ${file} — ${why}`);
  const total = coverageTotal(rows);
  const found = rows.reduce((a, r) => a + r.found, 0);
  const ok = total >= COVERAGE_MIN && rows.length > 0;
  checks.push({ name: "coverage gate", ok });
  console.log(
    ok
      ? `coverage gate: ok — ${total.toFixed(1)}% ≥ ${COVERAGE_MIN}% (${rows.length} files, ${found} lines)`
      : `coverage gate: FAILED — src/ line coverage ${total.toFixed(1)}% < ${COVERAGE_MIN}%${rows.length === 0 ? " (no src/ files found)" : ""}`,
  );
}

const failedChecks = checks.filter((c) => !c.ok).map((c) => c.name);
const failed = junit.failed + failedChecks.length + problems.length;
const passed = Math.max(0, junit.tests - junit.failed - junit.skipped) + checks.length - failedChecks.length;
if (junit.failures.length > 0) console.log(`failed tests:\n${junit.failures.map((f) => `  ${f}`).join("\n")}`);
for (const p of problems) console.log(`test run: FAILED — ${p}`);
if (failed > 0) {
  const parts = [
    ...failedChecks,
    ...(junit.failed > 0 ? [`${junit.failed} test${junit.failed > 1 ? "s" : ""}`] : []),
    ...(problems.length > 0 ? ["the test run itself"] : []),
  ];
  console.log(`FAILED: ${parts.join(", ")}`);
}
if (partial) console.log("note: a partial run (bun test arguments given) skips the coverage gate");
console.log(closingLine(passed, failed, junit.skipped));
process.exit(failed > 0 ? 1 : 0);
