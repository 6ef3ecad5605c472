import { Worker } from 'node:worker_threads';
import { decodeJob, type DecodeJob, type DecodeResult } from './decode-chunk';

interface Task {
  job: DecodeJob;
  resolve: (r: DecodeResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Runs decode jobs on worker threads, or on this thread (one job per macrotask, so progress,
 * I/O and cancellation still get turns) when `workerFile` is undefined or `threads` is 0.
 */
export class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private broken: unknown;
  private closed = false;

  constructor(workerFile: string | undefined, readonly threads: number) {
    if (!workerFile || threads < 1) { this.threads = 0; return; }
    for (let i = 0; i < threads; i++) {
      const w = new Worker(workerFile);
      w.on('message', (msg: { result?: DecodeResult; error?: string }) => {
        const t = this.busy.get(w);
        this.busy.delete(w);
        if (msg.error !== undefined) t?.reject(new Error(`decode worker: ${msg.error}`));
        else t?.resolve(msg.result!);
        this.idle.push(w);
        this.pump();
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => { if (!this.closed) this.fail(new Error(`decode worker exited with code ${code}`)); });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  run(job: DecodeJob): Promise<DecodeResult> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    if (this.threads === 0) {
      return new Promise((resolve, reject) => setImmediate(() => {
        try { resolve(decodeJob(job)); } catch (e) { reject(e); }
      }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const t = this.queue.shift()!;
      this.busy.set(w, t);
      // Zip bytes are handed over, not copied.
      w.postMessage(t.job, t.job.bytes ? [t.job.bytes.buffer as ArrayBuffer] : []);
    }
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.broken ??= e;
    for (const t of [...this.busy.values(), ...this.queue.splice(0)]) t.reject(e);
    this.busy.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('decode pool closed');
    for (const t of [...this.busy.values(), ...this.queue.splice(0)]) t.reject(err);
    this.busy.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
