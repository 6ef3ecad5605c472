/**
 * An error meant for the user: what went wrong (naming the file) and what to do next.
 * Anything else that escapes a command is a bug and is shown with its stack.
 */
export class IdcError extends Error {
  constructor(
    message: string,
    /** One actionable sentence: how to fix it. */
    readonly hint?: string,
    /** Stable code for programs (CLI exit paths, the language server, tests). */
    readonly code: string = 'IDC_ERROR',
  ) {
    super(message);
    this.name = 'IdcError';
  }
}

export function isIdcError(e: unknown): e is IdcError {
  return e instanceof IdcError;
}

/** Throws a uniform error when a job was cancelled through its AbortSignal. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new IdcError('Cancelled.', 'Run the command again to resume where it stopped.', 'CANCELLED');
}

/**
 * A place where a long job may stop: lets the event loop run (so SIGINT handlers and the job
 * host's cancel message are heard even while compute never leaves this thread), then throws if
 * cancelled. Costs a few microseconds; call it once per batch, not per item.
 */
export async function cancellationPoint(signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  throwIfCancelled(signal);
}
