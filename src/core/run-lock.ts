/**
 * One job at a time per output folder it writes (a run, an evaluation, a predictions folder): a
 * lock file created exclusively (O_EXCL) holding who owns it. Same host and owner gone = stale,
 * taken over with a note. Hand-written rather than proper-lockfile: that library judges staleness
 * by an mtime its timer refreshes, so a job whose event loop is busy (TF.js kernels, cache build)
 * past the stale time loses its lock to a second writer, and it records no pid/host to name.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname, uptime } from 'node:os';
import { basename, join } from 'node:path';
import { IdcError } from './errors';
import { mkdirpOrExplain, wrapWriteError } from './fsutil';

export const LOCK_FILE = '.idc-lock';

export interface LockOwner { pid: number; host: string; startedAt: string; command: string }

export interface DirLock {
  readonly file: string;
  /** Set when a stale lock (its owner gone) was taken over: one sentence for the user. */
  readonly note?: string;
  release(): void;
}

/** Locks this process holds (lock file -> owner), removed on exit too (a second Ctrl+C exits without unwinding). */
const held = new Map<string, LockOwner>();
let exitHook = false;

let commandLabel: string | undefined;
/** What a lock says its owner is doing, for processes whose argv says nothing useful (the job process). */
export function setLockCommand(label: string | undefined): void {
  commandLabel = label;
}

function currentCommand(): string {
  if (commandLabel) return commandLabel;
  const script = basename(process.argv[1] ?? 'node');
  return [/^(cli\.js|idc)$/.test(script) ? 'idc' : script, ...process.argv.slice(2)].join(' ');
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(o.pid) && typeof o.host === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** The owner of `dir`'s lock as recorded, or undefined when there is none (or it cannot be read). */
export function lockOwner(dir: string): LockOwner | undefined {
  return readOwner(join(dir, LOCK_FILE));
}

const sameOwner = (a: LockOwner | undefined, b: LockOwner): boolean => a !== undefined && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;

/** Why an owner is known to be gone (the lock is stale), or undefined when it may still run. */
function goneReason(o: LockOwner, file: string): string | undefined {
  if (o.host !== hostname()) return undefined; // another machine: its pids mean nothing here
  if (o.pid === process.pid) return sameOwner(held.get(file), o) ? undefined : 'this process id was reused';
  const started = Date.parse(o.startedAt);
  if (Number.isFinite(started) && started < Date.now() - uptime() * 1000) return 'the machine has restarted since';
  try {
    process.kill(o.pid, 0);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? undefined : 'it is no longer running';
  }
}

function inUse(what: string, o: LockOwner, file: string): IdcError {
  const remote = o.host !== hostname();
  return new IdcError(
    `${what[0].toUpperCase()}${what.slice(1)} is in use by pid ${o.pid} (${o.host}) since ${o.startedAt}: ${o.command || 'another job'}.`,
    remote ? `Wait for it to finish or stop it on ${o.host}; if that job is gone, delete ${file}.`
      : `Wait for it to finish or stop it (Ctrl+C in its terminal, Stop Job in VS Code, or kill ${o.pid}), then run this again.`,
    'RUN_LOCKED');
}

function createExclusive(file: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw wrapWriteError(e, file);
  }
  try {
    writeSync(fd, JSON.stringify(owner) + '\n');
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the lock of `dir` (created if missing) for this process, or throws RUN_LOCKED naming the
 * owner. `what` names the folder for the user ("run U", "evaluation U/test").
 */
export function lockDir(dir: string, what: string): DirLock {
  mkdirpOrExplain(dir); // a read-only output folder is the user's to fix, not a crash
  const file = join(dir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command: currentCommand() };
  let note: string | undefined;
  for (let attempt = 0; ; attempt++) {
    if (createExclusive(file, owner)) break;
    if (attempt > 50) throw new IdcError(`Could not lock ${what}: ${file} keeps changing.`, 'Run the command again.', 'RUN_LOCKED');
    const found = readOwner(file);
    if (!found) {
      // Created but not yet written, or torn by a crash: only an old unreadable lock is stale.
      let age: number;
      try { age = Date.now() - statSync(file).mtimeMs; } catch { continue; }
      if (age < 5000) {
        if (attempt < 20) { sleepSync(50); continue; }
        throw new IdcError(`${what[0].toUpperCase()}${what.slice(1)} is locked by ${file}, which cannot be read.`, `If no job is using it, delete ${file}.`, 'RUN_LOCKED');
      }
      if (takeOver(file, undefined)) note = `removed an unreadable lock of ${what} (${file}).`;
      continue;
    }
    const reason = goneReason(found, file);
    if (!reason) throw inUse(what, found, file);
    if (takeOver(file, found)) note = `took over the lock of ${what} from pid ${found.pid} (${found.host}, ${found.command}): ${reason}.`;
  }
  held.set(file, owner);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const [f, o] of held) removeIfOurs(f, o); });
  }
  let released = false;
  return {
    file, note,
    release() {
      if (released) return;
      released = true;
      removeIfOurs(file, owner);
      if (sameOwner(held.get(file), owner)) held.delete(file);
    },
  };
}

/** Removes the lock only while it is still this owner's (a takeover may have replaced it). */
function removeIfOurs(file: string, owner: LockOwner): void {
  if (!sameOwner(readOwner(file), owner)) return;
  try { unlinkSync(file); } catch { /* already gone (the folder was removed) */ }
}

/**
 * Removes a stale lock. A second exclusive file serializes takers, so two processes that both saw
 * the same dead owner cannot each remove the other's fresh lock. True when it was removed.
 */
function takeOver(file: string, seen: LockOwner | undefined): boolean {
  const guard = `${file}.takeover`;
  if (!createExclusive(guard, { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command: 'lock takeover' })) {
    // Another process is taking over right now; a guard left by a crash is old.
    try { if (Date.now() - statSync(guard).mtimeMs > 10_000) rmSync(guard, { force: true }); } catch { /* gone */ }
    sleepSync(50);
    return false;
  }
  try {
    const still = readOwner(file);
    if (seen ? !sameOwner(still, seen) : still !== undefined) return false;
    rmSync(file, { force: true });
    return true;
  } finally {
    rmSync(guard, { force: true });
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs `fn` holding the lock of `dir`; released however `fn` ends. A takeover's note goes to
 * stderr by default: the CLI shows it, and the language server logs a job process's stderr.
 */
export async function withDirLock<T>(dir: string, what: string, fn: (lock: DirLock) => Promise<T>, onNote: (note: string) => void = (n) => process.stderr.write(`Note: ${n}\n`)): Promise<T> {
  const lock = lockDir(dir, what);
  if (lock.note) onNote(lock.note);
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}

/** For readers: refuses while a live job holds the lock of `dir` (a stale lock does not count). */
export function assertNotLocked(dir: string, what: string): void {
  const file = join(dir, LOCK_FILE);
  const o = readOwner(file);
  if (o && !goneReason(o, file)) throw inUse(what, o, file);
}
