#!/usr/bin/env bun
// argv -> cli. `__plugin-host` is the same binary in plugin-host mode (a child of the gateway).
if (process.argv[2] === "__plugin-host") {
  const { runChild } = await import("./sandbox/child.ts");
  await runChild();
} else {
  const { root } = await import("./cli/index.ts");
  const { runCli } = await import("./cli/_run.ts");
  process.exitCode = await runCli(root, process.argv.slice(2));
}
export {};
