/**
 * A small Prometheus registry: counters and gauges with labels, rendered in the text exposition
 * format. Increments are a map update — cheap enough for the hot path; a label set is bounded by
 * the caller (method names, stop reasons), never by user input.
 */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Registers a gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number): void;
  help(name: string, help: string, type: "counter" | "gauge"): void;
  render(): string;
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
  const meta = new Map<string, { help: string; type: "counter" | "gauge" }>();
  const gauges = new Map<string, () => number>();
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
    render() {
      const lines: string[] = [];
      const names = new Set([...meta.keys(), ...series.keys()]);
      for (const name of [...names].sort()) {
        const m = meta.get(name);
        if (m) lines.push(`# HELP ${name} ${m.help}`, `# TYPE ${name} ${m.type}`);
        const read = gauges.get(name);
        if (read) lines.push(`${name} ${read()}`);
        for (const { labels, value } of (series.get(name) ?? new Map()).values()) lines.push(`${name}${labels} ${value}`);
      }
      return lines.join("\n") + "\n";
    },
  };
}
