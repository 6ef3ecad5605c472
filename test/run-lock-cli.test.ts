import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir, writePatches, gridSpecs } from './helpers/fixtures';

// Run locking and run-id checks as users meet them: the bundled CLI, several processes at once.
const CLI = resolve(__dirname, '../dist/cli.js');
let out = '';
let work = '';

function idc(args: string[], cwd = work) {
  const r = spawnSync(process.execPath, [CLI, ...args, '-q'], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const history = (runDir: string): number[] => readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).epoch);

/** A pid that is certainly not running: a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function writeLock(dir: string, pid: number, command = 'idc train --run X'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.idc-lock'), JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString(), command }));
}

before(async () => {
  ({ out } = await preparedOutput());
  work = tempDir('idc-lock-cli-');
  writeFileSync(join(work, 'idc.config.json'), JSON.stringify(tinyTrainConfig((c) => { c.paths.output = out; c.train.epochs = 2; c.train.stepsPerEpoch = 2; c.evaluate.gradCamExamples = 1; })));
});

test('a run id that is not a plain name is a usage error naming --run, for every command', () => {
  for (const bad of ['..', '.', 'a/b', '../escape', '.hidden']) {
    const r = idc(['train', '--run', bad]);
    assert.equal(r.code, 2, `train --run ${bad}: ${r.err}`);
    assert.match(r.err, /--run/);
    assert.doesNotMatch(r.err, /\n\s+at /);
  }
  assert.ok(!existsSync(join(out, 'run.json')) && !existsSync(join(out, 'history.jsonl')), 'nothing written into the output root');
  assert.ok(!existsSync(join(out, 'runs', 'a')), 'nothing written under runs/');
  for (const cmd of [['evaluate'], ['report'], ['predict', work]]) {
    const r = idc([...cmd, '--run', '..']);
    assert.equal(r.code, 2, `${cmd[0]} --run ..: ${r.err}`);
    assert.match(r.err, /--run/);
  }
});

test('the same run started twice: the second is refused with the owner pid; history has one line per epoch', async () => {
  const cfg = join(work, 'long.config.json');
  writeFileSync(cfg, JSON.stringify(tinyTrainConfig((c) => { c.paths.output = out; c.train.epochs = 3; c.train.stepsPerEpoch = 60; })));
  const first = spawn(process.execPath, [CLI, 'train', '--run', 'T', '-c', cfg, '-q'], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  first.stdout!.on('data', (d) => (stdout += d));
  first.stderr!.on('data', (d) => (stderr += d));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) => first.once('exit', (code) => { exitCode = code; r(); }));
  try {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && exitCode === undefined && !/Run T:/.test(stdout)) await new Promise((r) => setTimeout(r, 50));
    assert.match(stdout, /Run T:/, `the first run never started: ${stderr}`);
    assert.ok(existsSync(join(out, 'runs', 'T', '.idc-lock')), 'the running job holds a lock file');

    const second = idc(['train', '--run', 'T', '-c', cfg, '--epochs', '5']);
    assert.equal(exitCode, undefined, `the first run ended before the second was refused: ${stdout}`);
    assert.equal(second.code, 1, second.err);
    assert.match(second.err, new RegExp(`Run T is in use by pid ${first.pid} \\(${hostname().replace(/[.]/g, '\\.')}\\)`));
    assert.match(second.err, /idc train --run T/, 'names what the owner runs');
    assert.match(second.err, /Wait for it to finish or stop it/);
    assert.doesNotMatch(second.err, /\n\s+at /);
  } catch (e) {
    first.kill('SIGINT');
    throw e;
  } finally {
    await exited;
  }
  assert.equal(exitCode, 0, stderr);
  const runDir = join(out, 'runs', 'T');
  assert.deepEqual(history(runDir), [0, 1, 2], 'one line per epoch');
  assert.equal(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status, 'finished');
  assert.equal(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).train.epochs, 3, 'the refused run wrote no config');
  assert.ok(!existsSync(join(runDir, '.idc-lock')), 'the lock is released when the job stops');
});

test('a lock left by a dead process on this host is taken over, with a note', () => {
  const runDir = join(out, 'runs', 'stale');
  const pid = deadPid();
  writeLock(runDir, pid);
  const r = idc(['train', '--run', 'stale']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out + r.err, new RegExp(`took over the lock of run stale from pid ${pid}`));
  assert.deepEqual(history(runDir), [0, 1]);
  assert.ok(!existsSync(join(runDir, '.idc-lock')));
});

test('a lock held by a live process on another host is never taken over', () => {
  const runDir = join(out, 'runs', 'remote');
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, '.idc-lock'), JSON.stringify({ pid: deadPid(), host: 'some-other-host', startedAt: new Date().toISOString(), command: 'idc train' }));
  const r = idc(['train', '--run', 'remote']);
  assert.equal(r.code, 1);
  assert.match(r.err, /Run remote is in use by pid \d+ \(some-other-host\)/);
  assert.match(r.err, /delete .*\.idc-lock/);
});

test('evaluate, report and predict are refused while a live job holds the folder they use', () => {
  // The "live job" is this test process.
  assert.equal(idc(['train', '--run', 'E']).code, 0);
  const evalDir = join(out, 'runs', 'E', 'eval', 'test');
  writeLock(evalDir, process.pid, 'idc evaluate --run E');
  const ev = idc(['evaluate', '--run', 'E']);
  assert.equal(ev.code, 1, ev.err);
  assert.match(ev.err, new RegExp(`Evaluation E/test is in use by pid ${process.pid}`));
  assert.ok(!existsSync(join(evalDir, 'metrics.json')));
  const rep = idc(['report', '--run', 'E']);
  assert.equal(rep.code, 1, rep.err);
  assert.match(rep.err, /in use by pid/);

  const patches = join(work, 'newpatient');
  writePatches(patches, gridSpecs(['77'], 3, 1));
  const predDir = join(out, 'predictions', 'newpatient');
  writeLock(predDir, process.pid, 'idc predict newpatient');
  const pr = idc(['predict', patches, '--run', 'E']);
  assert.equal(pr.code, 1, pr.err);
  assert.match(pr.err, new RegExp(`in use by pid ${process.pid}`));

  // Once the owner is gone, they run and leave no lock behind.
  writeLock(evalDir, deadPid());
  const ok = idc(['evaluate', '--run', 'E']);
  assert.equal(ok.code, 0, ok.err);
  assert.ok(existsSync(join(evalDir, 'metrics.json')));
  assert.deepEqual(readdirSync(evalDir).filter((f) => f.startsWith('.idc-lock')), []);
});
