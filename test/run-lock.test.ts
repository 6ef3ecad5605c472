import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { lockDir, lockOwner, withDirLock, assertNotLocked, LOCK_FILE } from '../src/core/run-lock';
import { runIdProblem, isRunId } from '../src/core/run-id';
import { claimNewRun } from '../src/core/train/train';
import { tempDir } from './helpers/fixtures';

const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

test('run ids: plain names only', () => {
  for (const ok of ['T', 'run-20261126-120000', 'run-20261126-120000-2', 'a.b_c-d', '_x']) assert.equal(runIdProblem(ok), undefined, ok);
  for (const bad of ['', '.', '..', 'a/b', '../x', 'a\\b', '.hidden', ' x', 'x'.repeat(129), 'é']) assert.ok(runIdProblem(bad), `accepted "${bad}"`);
  assert.equal(isRunId(undefined), false);
  assert.match(runIdProblem('..')!, /not a name/);
});

test('a lock records its owner, refuses a second taker by name and pid, and is released', async () => {
  const dir = join(tempDir(), 'runs', 'U');
  const lock = lockDir(dir, 'run U');
  const owner = lockOwner(dir)!;
  assert.deepEqual([owner.pid, owner.host], [process.pid, hostname()]);
  assert.ok(owner.startedAt && owner.command);
  assert.throws(() => lockDir(dir, 'run U'), (e: any) => e.code === 'RUN_LOCKED' && new RegExp(`^Run U is in use by pid ${process.pid} \\(`).test(e.message) && /Wait for it/.test(e.hint));
  assert.throws(() => assertNotLocked(dir, 'run U'), /in use by pid/);
  lock.release();
  lock.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  assertNotLocked(dir, 'run U');
  // withDirLock releases on failure too.
  await assert.rejects(withDirLock(dir, 'run U', async () => { throw new Error('boom'); }), /boom/);
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
});

test('a stale lock (dead pid on this host) is taken over with a note; a live one is not', () => {
  const dir = tempDir();
  const pid = deadPid();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString(), command: 'idc train --run U' }));
  assertNotLocked(dir, 'run U');
  const lock = lockDir(dir, 'run U');
  assert.match(lock.note!, new RegExp(`took over the lock of run U from pid ${pid} \\(.*idc train --run U\\): it is no longer running`));
  assert.equal(lockOwner(dir)!.pid, process.pid);
  lock.release();
  // A lock older than the machine's uptime is stale even if its pid is reused now.
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: '2000-01-01T00:00:00.000Z', command: 'x' }));
  const l2 = lockDir(dir, 'run U');
  assert.match(l2.note!, /restarted/);
  l2.release();
  // The parent process is alive: never stale.
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: new Date().toISOString(), command: 'x' }));
  assert.throws(() => lockDir(dir, 'run U'), new RegExp(`in use by pid ${process.ppid}`));
});

test('locks are removed when the process exits without releasing them', () => {
  const dir = tempDir();
  const script = `require(${JSON.stringify(resolve(__dirname, '../src/core/run-lock.ts'))}).lockDir(${JSON.stringify(dir)}, 'run U'); process.exit(3);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.deepEqual(readdirSync(dir), []);
});

test('many processes racing for one lock: exactly one wins', async () => {
  const dir = tempDir();
  // Each holds the lock (if it gets it) long enough for the others to try.
  const script = `try { require(${JSON.stringify(resolve(__dirname, '../src/core/run-lock.ts'))}).lockDir(${JSON.stringify(dir)}, 'run U'); setTimeout(() => process.exit(0), 3000); } catch (e) { process.stdout.write(e.code); process.exit(1); }`;
  const rs = await Promise.all(Array.from({ length: 4 }, () => new Promise<{ code: number | null; out: string }>((res) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => res({ code, out }));
  })));
  assert.equal(rs.filter((x) => x.code === 0).length, 1, JSON.stringify(rs));
  assert.ok(rs.filter((x) => x.code !== 0).every((x) => x.out === 'RUN_LOCKED'));
});

test('generated run folders are claimed atomically: the same id twice gets a suffix', () => {
  const out = tempDir();
  const same = () => 'run-20261126-120000';
  const a = claimNewRun(out, same);
  const b = claimNewRun(out, same);
  const c = claimNewRun(out, same);
  assert.deepEqual([a, b, c], ['run-20261126-120000', 'run-20261126-120000-2', 'run-20261126-120000-3']);
  for (const id of [a, b, c]) assert.ok(existsSync(join(out, 'runs', id)));
});
