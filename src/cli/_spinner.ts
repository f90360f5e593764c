/**
 * A "thinking" spinner on stderr while the model has not answered yet. Only on a terminal: piped
 * stderr gets nothing from it, so scripts and logs never see spinner frames.
 */
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const INTERVAL_MS = 80;

export interface Spinner {
  /** Shows the spinner (no-op when already shown, or when stderr is not a terminal). */
  start(): void;
  /** Erases it, leaving the cursor where the spinner's line began. */
  stop(): void;
}

export function createSpinner(
  stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
  label = "thinking…",
): Spinner {
  let timer: ReturnType<typeof setInterval> | null = null;
  let frame = 0;
  const draw = () => void stream.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`);
  return {
    start() {
      if (timer || stream.isTTY !== true) return;
      draw();
      timer = setInterval(draw, INTERVAL_MS);
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      stream.write("\r\x1b[K");
    },
  };
}
