import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import type { TorchLaunchConfig } from '../config';
import { IdcError } from '../errors';

/**
 * The PyTorch engine process (engines/torch/idc_torch): finding Python and torch, starting the
 * engine, and its framed messages: a little-endian uint32 header length, a JSON header, then
 * header.nbytes bytes of raw float32 payload, both ways, one request at a time.
 */

export const TORCH_INSTALL = 'apt-get install python3-torch python3-numpy (Debian/Ubuntu system Python)';

export function defaultPython(): string {
  return process.platform === 'win32' ? 'python' : 'python3';
}

/** The exact commands that give `python` a torch. */
export function torchInstallFix(python: string): string {
  return `${TORCH_INSTALL}, or ${python} -m pip install torch numpy`;
}

/** engines/torch beside the bundle (dist/../engines/torch, also in the .vsix) or in the source tree. */
export function engineDir(): string | undefined {
  const candidates = [resolve(__dirname, '..', 'engines', 'torch'), resolve(__dirname, '..', '..', '..', 'engines', 'torch')];
  return candidates.find((d) => existsSync(join(d, 'idc_torch', '__main__.py')));
}

/**
 * The engine's environment: its package on PYTHONPATH, no .pyc files written into the extension,
 * and glibc malloc settings without which PyTorch on CPU runs several times slower (measured with
 * ../shared/bench/torch_reference.py); a user's own values win.
 */
export function engineEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = engineDir();
  return {
    ...base,
    PYTHONPATH: [dir, base['PYTHONPATH']].filter(Boolean).join(delimiter),
    PYTHONDONTWRITEBYTECODE: '1',
    MALLOC_MMAP_MAX_: base['MALLOC_MMAP_MAX_'] ?? '0',
    MALLOC_TRIM_THRESHOLD_: base['MALLOC_TRIM_THRESHOLD_'] ?? '100000000000',
  };
}

export interface TorchInfo { python: string; pythonVersion: string; torch: string; device: string; gpu?: string }

/** The last `lines` non-empty lines of a text. */
export function tail(text: string, lines: number): string {
  return text.trim().split('\n').filter((l) => l.trim()).slice(-lines).join(' | ');
}

export interface Reply { header: Record<string, unknown>; data: Float32Array }

/** A torchrun launch: engine.torch with masterPort resolved (never 0). */
export type TorchLaunch = TorchLaunchConfig;

/** Exit code of a rank that lost the others (idc_torch/dist.py PEER_LOST): a consequence, not the cause. */
const PEER_LOST = 3;

/** Several processes or machines: started through torchrun rather than as one engine process. */
export function isDistributed(l: TorchLaunchConfig | undefined): l is TorchLaunchConfig {
  return !!l && l.processes * l.nodes > 1;
}

/**
 * torchrun's arguments for machine `nodeRank`: static rendezvous at node 0, no restarts (the job
 * fails, the run resumes). idc_torch.torchrun is torch.distributed.run with a fix for torch < 2.0
 * on Python 3.11+, whose default --redirects fails there.
 */
export function torchrunArgs(l: TorchLaunch, nodeRank: number): string[] {
  return [
    '-m', 'idc_torch.torchrun', '--nnodes', String(l.nodes), '--node_rank', String(nodeRank), '--nproc_per_node', String(l.processes),
    '--master_addr', l.masterAddress || '127.0.0.1', '--master_port', String(l.masterPort),
    '--max_restarts', '0', '--monitor_interval', '1', '--rdzv_conf', `timeout=${l.timeoutSeconds}`, '-m', 'idc_torch',
  ];
}

/** What to run on machine `nodeRank` (1 … nodes-1) of a multi-machine job, for hints and the README. */
export function nodeCommand(python: string, l: TorchLaunch, nodeRank: number, dir = '<folder holding idc_torch>'): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return `PYTHONPATH=${q(dir)} ${[python, ...torchrunArgs(l, nodeRank)].map(q).join(' ')}`;
}

/** A free TCP port on this machine for a one-machine job's rendezvous. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/**
 * torchrun's failure summary (ChildFailedError) and our ranks' own last words ("idc_torch rank N:
 * …", idc_torch/dist.py) as one sentence: the ranks that failed first, not those that then lost
 * them (exit 3) or were stopped by torchrun (SIGTERM).
 */
export function describeTorchrunFailure(stderr: string): string | undefined {
  const said = new Map<number, string>();
  for (const m of stderr.matchAll(/^idc_torch rank (\d+): (.*)$/gm)) said.set(Number(m[1]), m[2]);
  const failed = new Map<number, { code: number; pid: string; host: string }>();
  for (const m of stderr.matchAll(/host\s*:\s*(\S+)\s*\n\s*rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+) \(pid: (\d+)\)/g)) {
    failed.set(Number(m[2]), { host: m[1], code: Number(m[3]), pid: m[4] });
  }
  const how = (code: number) => (code < 0 ? `was killed by ${SIGNALS[-code] ?? `signal ${-code}`}` : code === PEER_LOST ? 'lost the other processes' : `exited with code ${code}`);
  const causes = [...failed].filter(([, f]) => f.code !== PEER_LOST && f.code !== -15);
  const shown = causes.length ? causes : [...failed];
  const parts = shown.map(([rank, f]) => `rank ${rank} (pid ${f.pid} on ${f.host}) ${how(f.code)}${said.has(rank) && f.code !== PEER_LOST ? `: ${said.get(rank)}` : ''}`);
  // Ranks that failed on their own before torchrun noticed (no summary yet, or another machine's).
  for (const [rank, text] of said) if (!failed.has(rank) && !/^lost the other processes/.test(text)) parts.push(`rank ${rank}: ${text}`);
  if (!parts.length && said.size) parts.push(...[...said].map(([rank, text]) => `rank ${rank} ${text}`));
  return parts.length ? parts.join('; ') : undefined;
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };

/** One engine process; requests are queued, so callers may fire without waiting. */
export class TorchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private chunks: Buffer[] = [];
  private have = 0;
  private waiting: { op: string; resolve(r: Reply): void; reject(e: Error): void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = '';
  /** Why the process is gone, once it is. */
  private dead: IdcError | undefined;
  private closing = false;
  readonly exited: Promise<void>;

  /**
   * One engine process, or with `launch` (several processes or machines) torchrun in its own
   * process group: rank 0 inherits our pipes and is the only rank that writes to stdout.
   */
  constructor(readonly python: string, readonly launch?: TorchLaunch) {
    const dir = engineDir();
    if (!dir) throw new IdcError('The torch engine (engines/torch/idc_torch) is missing from this installation.', 'Reinstall the extension, or set engine.backend to "wasm".', 'TORCH_ENGINE');
    const distributed = isDistributed(launch);
    const env = engineEnv();
    if (distributed) {
      // Without a value torchrun prints a banner and picks 1; the engine sets its own per rank anyway.
      env['OMP_NUM_THREADS'] ??= String(Math.max(1, Math.floor(availableParallelism() / launch.processes)));
      // A stuck NCCL collective then aborts at the timeout instead of hanging.
      env['NCCL_ASYNC_ERROR_HANDLING'] ??= '1';
      env['TORCH_NCCL_ASYNC_ERROR_HANDLING'] ??= '1';
    }
    const args = distributed ? torchrunArgs(launch, 0) : ['-m', 'idc_torch'];
    this.child = spawn(python, args, { env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, detached: distributed && process.platform !== 'win32' });
    this.child.stdout.on('data', (d: Buffer) => this.onData(d));
    // torchrun's failure summary and every rank's last words need more room than one process's traceback.
    this.child.stderr.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(distributed ? -32000 : -8000); });
    // A write after the engine died fails here too; the exit handler reports it.
    this.child.stdin.on('error', () => {});
    // Ranks share our stdout and stderr, so 'close' waits for them: end any torchrun left behind.
    if (distributed) this.child.once('exit', () => this.killTree());
    this.exited = new Promise((res) => {
      this.child.once('error', (e) => { this.fail(`could not start: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `${python} not found` : e.message}`); res(); });
      this.child.once('close', (code, signal) => { this.fail(signal ? `was killed by ${signal}` : `exited with code ${code}`); res(); });
    });
  }

  /** SIGKILL to torchrun and every rank (its process group), or to the one engine process. */
  private killTree(): void {
    try {
      if (isDistributed(this.launch) && process.platform !== 'win32' && this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
      else this.child.kill('SIGKILL');
    } catch { /* already gone */ }
  }

  /** Ends the engine now and fails what is pending with `why` (a request that never got its answer) and a `note` on what it means. */
  abort(why: string, note?: string): void {
    this.fail(why, note);
    this.killTree();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private fail(how: string, note?: string): void {
    if (this.dead) return;
    const err = tail(this.stderr, 6);
    const during = this.waiting ? ` during ${this.waiting.op}` : '';
    const l = this.launch;
    const ranks = isDistributed(l) ? describeTorchrunFailure(this.stderr) : undefined;
    const what = isDistributed(l)
      ? `The torch engine (torchrun, ${l.processes} process${l.processes > 1 ? 'es' : ''}${l.nodes > 1 ? ` on each of ${l.nodes} machines` : ''}, pid ${this.child.pid ?? '?'})`
      : `The torch engine (${this.python}, pid ${this.child.pid ?? '?'})`;
    this.dead = new IdcError(
      ranks ? `${what} failed${during}: ${ranks}.` : `${what} ${how}${during}${note ? `: ${note}` : ''}${err ? `; its stderr ends: ${err}` : ''}.`,
      'The run keeps its last checkpoint: resume it with "idc train --resume" (or set engine.backend to "wasm" and resume).',
      'TORCH_ENGINE',
    );
    this.waiting?.reject(this.dead);
    this.waiting = undefined;
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.have += d.length;
    for (;;) {
      if (this.have < 4) return;
      const head = this.chunks.length === 1 ? this.chunks[0] : this.flatten();
      const hl = head.readUInt32LE(0);
      if (this.have < 4 + hl) return;
      const header = JSON.parse(head.subarray(4, 4 + hl).toString()) as Record<string, unknown>;
      const nbytes = Number(header['nbytes'] ?? 0);
      if (this.have < 4 + hl + nbytes) return;
      const all = this.flatten();
      // Copied: the payload may sit at an offset that is no multiple of 4.
      const data = new Float32Array(nbytes / 4);
      new Uint8Array(data.buffer).set(all.subarray(4 + hl, 4 + hl + nbytes));
      const rest = all.subarray(4 + hl + nbytes);
      this.chunks = rest.length ? [rest] : [];
      this.have = rest.length;
      const w = this.waiting;
      this.waiting = undefined;
      if (!w) continue;
      if (typeof header['error'] === 'string') {
        w.reject(new IdcError(`The torch engine failed in ${w.op}: ${header['error']}`, `Its traceback: ${tail(String(header['traceback'] ?? ''), 4)}`, 'TORCH_ENGINE'));
      } else {
        w.resolve({ header, data });
      }
    }
  }

  private flatten(): Buffer {
    const b = Buffer.concat(this.chunks, this.have);
    this.chunks = [b];
    return b;
  }

  /** Sends one request after the previous ones have been answered. Payload arrays are sent as they are (no copy): keep them unchanged until the reply. */
  request(header: Record<string, unknown> & { op: string }, payload: readonly Float32Array[] = []): Promise<Reply> {
    const run = () => new Promise<Reply>((res, rej) => {
      if (this.dead) { rej(this.dead); return; }
      this.waiting = { op: header.op, resolve: res, reject: rej };
      const nbytes = payload.reduce((s, a) => s + a.byteLength, 0);
      const h = Buffer.from(JSON.stringify({ ...header, nbytes }));
      const len = Buffer.alloc(4);
      len.writeUInt32LE(h.length, 0);
      this.child.stdin.write(Buffer.concat([len, h]));
      for (const a of payload) this.child.stdin.write(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  /** Asks the engine to exit, then ends it if it does not within 5 s. */
  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    if (!this.dead) {
      await Promise.race([this.request({ op: 'exit' }).catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
      this.child.stdin.end();
    }
    const timer = setTimeout(() => this.killTree(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
