/**
 * A small Prometheus registry: counters and gauges with labels, and unlabelled histograms, rendered
 * in the text exposition format. Increments are a map update — cheap enough for the hot path; a
 * label set is bounded by the caller (method names, stop reasons), never by user input.
 */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Registers a gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number): void;
  help(name: string, help: string, type: "counter" | "gauge"): void;
  /** Registers a histogram with these upper bounds (ascending; `+Inf` is implied). */
  histogram(name: string, help: string, buckets: readonly number[]): void;
  /** Adds one observation to a histogram (one registered on first use gets DEFAULT_BUCKETS). */
  observe(name: string, value: number): void;
  render(): string;
}

/** Seconds, from a fast local step to a turn that waited minutes. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

interface Histogram {
  bounds: readonly number[];
  /** Per bound, observations ≤ it (not yet cumulative: summed at render). */
  counts: number[];
  sum: number;
  count: number;
}

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const labelText = (labels: Record<string, string>) => {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
};

export function createMetrics(): Metrics {
  // Per name: a cheap key of the label values → the rendered label text and the value. The text is
  // built once per label set, not on every increment (increments are on the hot path).
  const series = new Map<string, Map<string, { labels: string; value: number }>>();
  const meta = new Map<string, { help: string; type: "counter" | "gauge" | "histogram" }>();
  const gauges = new Map<string, () => number>();
  const histograms = new Map<string, Histogram>();
  const histogram = (name: string, bounds: readonly number[]) => {
    const h: Histogram = { bounds, counts: bounds.map(() => 0), sum: 0, count: 0 };
    histograms.set(name, h);
    return h;
  };
  return {
    inc(name, labels = {}, by = 1) {
      let s = series.get(name);
      if (!s) series.set(name, (s = new Map()));
      let key = "";
      for (const k in labels) key += k + "\u0000" + labels[k] + "\u0001";
      const entry = s.get(key);
      if (entry) entry.value += by;
      else s.set(key, { labels: labelText(labels), value: by });
    },
    gauge(name, help, read) {
      meta.set(name, { help, type: "gauge" });
      gauges.set(name, read);
    },
    help(name, help, type) {
      meta.set(name, { help, type });
    },
    histogram(name, help, buckets) {
      meta.set(name, { help, type: "histogram" });
      histogram(name, buckets);
    },
    observe(name, value) {
      const h = histograms.get(name) ?? histogram(name, DEFAULT_BUCKETS);
      h.sum += value;
      h.count++;
      const i = h.bounds.findIndex((b) => value <= b);
      if (i !== -1) h.counts[i]!++;
    },
    render() {
      const lines: string[] = [];
      const names = new Set([...meta.keys(), ...series.keys(), ...histograms.keys()]);
      for (const name of [...names].sort()) {
        const m = meta.get(name);
        if (m) lines.push(`# HELP ${name} ${m.help}`, `# TYPE ${name} ${m.type}`);
        const read = gauges.get(name);
        if (read) lines.push(`${name} ${read()}`);
        const h = histograms.get(name);
        if (h) {
          let cumulative = 0;
          h.bounds.forEach((b, i) => lines.push(`${name}_bucket{le="${b}"} ${(cumulative += h.counts[i]!)}`));
          lines.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
        }
        for (const { labels, value } of (series.get(name) ?? new Map()).values())
          lines.push(`${name}${labels} ${value}`);
      }
      return lines.join("\n") + "\n";
    },
  };
}
