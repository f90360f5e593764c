#!/usr/bin/env bun
// argv -> cli. `__plugin-host` is the same binary in plugin-host mode (a child of the gateway).
if (process.argv[2] === "__plugin-host") {
  const { runChild } = await import("./sandbox/child.ts");
  await runChild();
} else {
  // `exoclaw sessions list | head -1`: the reader left, which is no failure of ours.
  const quietOnClosedPipe = (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  };
  process.stdout.on("error", quietOnClosedPipe);
  process.stderr.on("error", quietOnClosedPipe);
  // citty colours its help unless NO_COLOR is set, pipe or not: `exoclaw --help | less` gets plain text.
  if (!process.stdout.isTTY && process.env.NO_COLOR === undefined) process.env.NO_COLOR = "1";
  const { root } = await import("./cli/index.ts");
  const { runCli } = await import("./cli/_run.ts");
  process.exitCode = await runCli(root, process.argv.slice(2));
}
export {};
