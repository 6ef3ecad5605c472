/** Structured progress, emitted by every long core job; the CLI draws a bar, the server forwards it. */
export interface ProgressEvent {
  /** Machine-readable phase, e.g. 'organize.scan', 'synth.write', 'split'. */
  phase: string;
  /** Human label for the phase. */
  label: string;
  done: number;
  /** Unknown while a total is still being discovered. */
  total?: number;
  /** What `done` counts: 'files', 'patients', 'patches' … */
  unit: string;
  message?: string;
}

export type ProgressSink = (event: ProgressEvent) => void;

export const noProgress: ProgressSink = () => {};

/**
 * Rate-limits a sink so hot loops can report every item cheaply;
 * the first and final (done === total) events always pass.
 */
export function throttled(sink: ProgressSink, intervalMs = 100): ProgressSink {
  let last = 0;
  return (e) => {
    const now = Date.now();
    if (now - last >= intervalMs || e.done === 0 || (e.total !== undefined && e.done >= e.total)) {
      last = now;
      sink(e);
    }
  };
}
