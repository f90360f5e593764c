/**
 * Preloaded into a gateway run from source (`bun --preload bench/_heap-probe.ts src/main.ts`, what
 * `bench/soak.ts --heap` does): every EXOCLAW_HEAP_PROBE_MS (default 5000) it runs a full collection
 * and appends one JSON line to the file EXOCLAW_HEAP_PROBE names — time, RSS, the live JS heap
 * (bun:jsc heapStats: size, object count, extra memory) and the count of every object type — so a
 * soak can tell a growing JS heap from native memory (SQLite, sockets, the allocator's own pages).
 * Not part of the product: nothing under src/ knows it exists.
 */
import { heapStats } from "bun:jsc";
import { appendFileSync } from "node:fs";

const file = process.env.EXOCLAW_HEAP_PROBE;
if (file) {
  const every = Number(process.env.EXOCLAW_HEAP_PROBE_MS ?? 5000);
  const t0 = performance.now();
  const probe = () => {
    Bun.gc(true);
    const h = heapStats();
    const m = process.memoryUsage();
    appendFileSync(
      file,
      `${JSON.stringify({
        t: (performance.now() - t0) / 1000,
        rss: m.rss,
        heapSize: h.heapSize,
        heapCapacity: h.heapCapacity,
        extraMemorySize: h.extraMemorySize,
        objectCount: h.objectCount,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        types: h.objectTypeCounts,
      })}\n`,
    );
  };
  setInterval(probe, every).unref();
}
