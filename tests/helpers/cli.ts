/** Runs the real CLI (`bun src/main.ts …`) as a child process, as a user would. */
import { join } from "node:path";

export const MAIN = join(import.meta.dir, "../../src/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runExoclaw(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Starts `exoclaw gateway` as a child process and waits for its "gateway listening" line. */
export async function spawnGateway(
  args: string[],
  env: Record<string, string>,
): Promise<{ port: number; url: string; pid: number; lines: string[] } & AsyncDisposable> {
  const proc = Bun.spawn([process.execPath, MAIN, "gateway", ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      const obj = JSON.parse(line) as { msg?: string; port?: number; url?: string };
      if (obj.msg === "gateway listening" && obj.port && obj.url) {
        reader.releaseLock();
        const drain = proc.stdout
          .pipeTo(new WritableStream({ write: (c) => void lines.push(decoder.decode(c)) }))
          .catch(() => {});
        return {
          port: obj.port,
          url: obj.url,
          pid: proc.pid,
          lines,
          async [Symbol.asyncDispose]() {
            proc.kill("SIGTERM");
            await proc.exited;
            await drain;
          },
        };
      }
    }
  }
  proc.kill("SIGKILL");
  throw new Error(`gateway did not start: ${lines.join("\n")}\n${await new Response(proc.stderr).text()}`);
}
