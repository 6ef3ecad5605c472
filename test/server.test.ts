import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection, type NotificationType } from 'vscode-jsonrpc/node';
import * as P from '../src/protocol/protocol';
import { tempDir, writePatches, gridSpecs } from './helpers/fixtures';

// The server is tested as VS Code runs it: the bundle, over node IPC, speaking LSP.
const SERVER = resolve(__dirname, '../dist/server.js');

type Event =
  | { type: 'create'; token: string }
  | { type: 'progress'; token: string; value: { kind: 'begin' | 'report' | 'end'; title?: string; cancellable?: boolean; percentage?: number; message?: string } }
  | { type: 'note'; method: string; params: any };

interface Lsp {
  conn: MessageConnection;
  child: ChildProcess;
  events: Event[];
  /** Resolves with the first notification of `type` (already received or to come) matching `pred`. */
  next<T>(type: NotificationType<T>, pred?: (p: T) => boolean, timeoutMs?: number): Promise<T>;
  notes<T>(type: NotificationType<T>, pred?: (p: T) => boolean): T[];
  close(): Promise<void>;
}

async function startServer(folder: string): Promise<Lsp> {
  if (!existsSync(SERVER)) spawnSync('npm', ['run', 'build'], { cwd: resolve(__dirname, '..'), stdio: 'inherit' });
  const child = fork(SERVER, ['--node-ipc', `--clientProcessId=${process.pid}`], { silent: true });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  child.stdout!.resume();
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  const events: Event[] = [];
  const waiters: (() => void)[] = [];
  const wake = (): void => { for (const w of waiters.splice(0)) w(); };
  conn.onRequest('window/workDoneProgress/create', (p: { token: string }) => { events.push({ type: 'create', token: p.token }); wake(); return null; });
  conn.onRequest((method) => { throw new Error(`unexpected request ${method}`); });
  conn.onUnhandledProgress((p) => { events.push({ type: 'progress', token: String(p.token), value: p.value as any }); wake(); });
  conn.onNotification((method, params) => { events.push({ type: 'note', method, params }); wake(); });
  conn.listen();
  await conn.sendRequest('initialize', {
    processId: process.pid, rootUri: null, workspaceFolders: [{ uri: pathToFileURL(folder).href, name: 'ws' }],
    capabilities: { window: { workDoneProgress: true }, workspace: { workspaceFolders: true } },
  });
  await conn.sendNotification('initialized', {});
  const notes = <T>(type: NotificationType<T>, pred: (p: T) => boolean = () => true): T[] =>
    events.flatMap((e) => (e.type === 'note' && e.method === type.method && pred(e.params) ? [e.params as T] : []));
  return {
    conn, child, events, notes,
    next: <T>(type: NotificationType<T>, pred: (p: T) => boolean = () => true, timeoutMs = 120_000) => new Promise<T>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`timed out waiting for ${type.method}; got:\n${events.slice(-15).map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}\nstderr: ${stderr.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        const hit = notes(type, pred)[0];
        if (hit) { clearTimeout(timer); res(hit); } else waiters.push(check);
      };
      check();
    }),
    async close() {
      try {
        await Promise.race([conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 3000))]);
        await conn.sendNotification('exit');
      } catch { /* already gone */ }
      conn.dispose();
      child.kill();
    },
  };
}

/** The work-done progress token of a job: the last one created before the job started. */
function tokenOf(lsp: Lsp, jobId: string): string {
  const started = lsp.events.findIndex((e) => e.type === 'note' && e.method === P.jobStarted.method && e.params.jobId === jobId);
  assert.ok(started >= 0, `job ${jobId} never started`);
  const create = lsp.events.slice(0, started).reverse().find((e): e is Extract<Event, { type: 'create' }> => e.type === 'create');
  assert.ok(create, `no work-done progress was created for job ${jobId}`);
  return create.token;
}

function progressOf(lsp: Lsp, token: string) {
  return lsp.events.flatMap((e) => (e.type === 'progress' && e.token === token ? [e.value] : []));
}

function indexOfNote(lsp: Lsp, method: string, jobId: string): number {
  return lsp.events.findIndex((e) => e.type === 'note' && e.method === method && e.params.jobId === jobId);
}

const PATIENTS = ['10', '11', '12', '13', '14', '15', '16', '17', '18', '19'];
let ws: string;
let lsp: Lsp;

before(async () => {
  ws = tempDir('idc-server-');
  writePatches(join(ws, 'raw'), gridSpecs(PATIENTS, 6, 2));
  writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({
    // A tiny, fast training set-up: training in tests is about the plumbing, not the model.
    paths: { archive: 'raw', output: 'out' },
    engine: { threads: 1 },
    model: { filters: [4], dense: [4] },
    train: { epochs: 12, batchSize: 16, augment: { rotate: 0 }, earlyStopping: { enabled: false } },
    evaluate: { gradCamExamples: 1 },
  }, null, 2));
  lsp = await startServer(ws);
});

after(async () => {
  await lsp?.close();
  if (ws) rmSync(ws, { recursive: true, force: true });
});

test('organize then split: files, job notifications and cancellable work-done progress', async () => {
  const org = await lsp.conn.sendRequest(P.runJob, { kind: 'organize' });
  assert.equal(org.queued, false);
  assert.equal(org.kind, 'organize');
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === org.jobId);
  assert.ok(existsSync(join(ws, 'out', 'manifest.csv')));
  assert.match(done.summary, /60 patches|60 files|Organized 60 files/);
  assert.ok(done.outputs.some((o) => o.path === join(ws, 'out', 'manifest.csv')));
  assert.equal(lsp.notes(P.jobFailed).length, 0);

  const started = indexOfNote(lsp, P.jobStarted.method, org.jobId);
  const progressAt = lsp.events.findIndex((e) => e.type === 'note' && e.method === P.jobProgress.method && e.params.jobId === org.jobId);
  const finished = indexOfNote(lsp, P.jobFinished.method, org.jobId);
  assert.ok(started >= 0 && started < progressAt && progressAt < finished, 'jobStarted, jobProgress, jobFinished in order');
  const prog = lsp.notes(P.jobProgress, (p) => p.jobId === org.jobId);
  assert.ok(prog.some((p) => p.phase === 'organize.check' && p.total === 60));
  assert.equal(prog.at(-1)!.percentage, 100);

  const token = tokenOf(lsp, org.jobId);
  const values = progressOf(lsp, token);
  assert.equal(values[0].kind, 'begin');
  assert.equal(values[0].cancellable, true);
  assert.equal(values[0].title, 'IDC: Organize raw archive');
  assert.ok(values.some((v) => v.kind === 'report' && /Checking patches/.test(v.message ?? '')), JSON.stringify(values));
  assert.equal(values.at(-1)!.kind, 'end');
  const pct = values.flatMap((v) => (v.percentage === undefined ? [] : [v.percentage]));
  assert.deepEqual(pct, [...pct].sort((a, b) => a - b), 'percentages never go back');

  const split = await lsp.conn.sendRequest(P.runJob, { kind: 'split' });
  const sdone = await lsp.next(P.jobFinished, (p) => p.jobId === split.jobId);
  const file = JSON.parse(readFileSync(join(ws, 'out', 'split.json'), 'utf8'));
  assert.equal(Object.values(file.patients as Record<string, string[]>).flat().length, PATIENTS.length);
  assert.match(sdone.summary, /train/);
  assert.deepEqual(progressOf(lsp, tokenOf(lsp, split.jobId)).map((v) => v.kind).filter((k, i, a) => a.indexOf(k) === i), ['begin', 'report', 'end']);

  const info = await lsp.conn.sendRequest(P.workspaceInfo, {});
  assert.equal(info.manifest, join(ws, 'out', 'manifest.csv'));
  assert.equal(info.split, join(ws, 'out', 'split.json'));
  assert.equal(info.archiveExists, true);
  assert.equal(info.configProblems, undefined);
  assert.deepEqual(await lsp.conn.sendRequest(P.getStatus), { state: 'idle', queued: [], backend: 'auto' });
});

test('one job at a time: a second request is queued, a queued job can be dropped, a cancelled job lets the next one run', async () => {
  const synth = await lsp.conn.sendRequest(P.runJob, { kind: 'synth', out: 'synth-big', patients: 150 });
  const split = await lsp.conn.sendRequest(P.runJob, { kind: 'split', seed: 7 });
  const extra = await lsp.conn.sendRequest(P.runJob, { kind: 'organize' });
  assert.equal(synth.queued, false);
  assert.deepEqual([split.queued, split.position, split.behind?.jobId], [true, 1, synth.jobId]);
  assert.deepEqual([extra.queued, extra.position], [true, 2]);
  const st = await lsp.next(P.status, (s) => s.running?.jobId === synth.jobId && s.queued.length === 2);
  assert.deepEqual(st.queued.map((j) => j.jobId), [split.jobId, extra.jobId]);

  // Drop the last queued job with idc/stopJob.
  const dropped = await lsp.conn.sendRequest(P.stopJob, { jobId: extra.jobId });
  assert.deepEqual(dropped.stopped.map((j) => j.jobId), [extra.jobId]);
  const c1 = await lsp.next(P.jobCancelled, (p) => p.jobId === extra.jobId);
  assert.equal(c1.wasQueued, true);

  // Cancel the running one the way VS Code's notification does.
  await lsp.next(P.jobProgress, (p) => p.jobId === synth.jobId && p.done > 0);
  const token = tokenOf(lsp, synth.jobId);
  const t0 = Date.now();
  await lsp.conn.sendNotification('window/workDoneProgress/cancel', { token });
  const cancelled = await lsp.next(P.jobCancelled, (p) => p.jobId === synth.jobId);
  assert.ok(Date.now() - t0 < 20_000, 'stops promptly');
  assert.equal(cancelled.wasQueued, false);
  assert.equal(progressOf(lsp, token).at(-1)!.kind, 'end');
  assert.equal(lsp.notes(P.jobFinished, (p) => p.jobId === synth.jobId).length, 0);

  // The queued split runs after it, never alongside.
  await lsp.next(P.jobFinished, (p) => p.jobId === split.jobId);
  assert.ok(indexOfNote(lsp, P.jobCancelled.method, synth.jobId) < indexOfNote(lsp, P.jobStarted.method, split.jobId));
  assert.equal(indexOfNote(lsp, P.jobStarted.method, extra.jobId), -1, 'the dropped job never starts');
  assert.equal(JSON.parse(readFileSync(join(ws, 'out', 'split.json'), 'utf8')).seed, 7, 'request fields override the config');
  rmSync(join(ws, 'synth-big'), { recursive: true, force: true });
});

test('failures: IdcError gives message, hint and code without a stack; bad requests are refused', async () => {
  const missing = await lsp.conn.sendRequest(P.runJob, { kind: 'organize', archive: 'no-such-archive' });
  const f = await lsp.next(P.jobFailed, (p) => p.jobId === missing.jobId);
  assert.match(f.message, /Archive not found: .*no-such-archive/);
  assert.ok(f.hint && f.hint.length > 10);
  assert.equal(f.code, 'NO_ARCHIVE');
  assert.equal(f.internal, false);
  assert.doesNotMatch(f.message + f.hint, /\n\s+at /);
  assert.equal(progressOf(lsp, tokenOf(lsp, missing.jobId)).at(-1)!.kind, 'end');

  const broken = tempDir('idc-broken-');
  writeFileSync(join(broken, 'idc.config.json'), '{ "split": { "ratios": [0.5, 0.6, 0.1] } }');
  const bad = await lsp.conn.sendRequest(P.runJob, { kind: 'split', folder: broken });
  const bf = await lsp.next(P.jobFailed, (p) => p.jobId === bad.jobId);
  assert.equal(bf.code, 'BAD_CONFIG');
  assert.match(bf.message, /split\.ratios: must sum to 1/);
  const info = await lsp.conn.sendRequest(P.workspaceInfo, { folder: broken });
  assert.deepEqual(info.configProblems, ['split.ratios: must sum to 1 (they sum to 1.2)']);
  rmSync(broken, { recursive: true, force: true });

  await assert.rejects(lsp.conn.sendRequest(P.runJob, { kind: 'frobnicate' } as never), /Unknown job kind/);
  await assert.rejects(lsp.conn.sendRequest(P.runJob, { kind: 'synth' } as never), /needs "out"/);
});

test('Score Patches in Folder before anything is trained: the shipped baseline model scores, and the summary says so', async () => {
  const pr = await lsp.conn.sendRequest(P.runJob, { kind: 'predict', patches: 'raw/10' });
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === pr.jobId, 120_000);
  assert.match(done.summary, /^Model: baseline model \(shipped; .*no finished training run/);
  assert.match(done.summary, /Youden's J on the baseline model's own validation patients/);
  const summary = JSON.parse(readFileSync(join(ws, 'out', 'predictions', '10', 'summary.json'), 'utf8'));
  assert.match(summary.model, /^baseline model/);
});

test('training reports epochs; cancelling it leaves a run that resume finishes', async () => {
  const tr = await lsp.conn.sendRequest(P.runJob, { kind: 'train' });
  const first = await lsp.next(P.epochMetrics, (p) => p.jobId === tr.jobId, 120_000);
  assert.equal(first.log.epoch, 0);
  assert.equal(first.epochs, 12);
  // Jobs run in a job process: the server answers while training keeps that process busy.
  const t1 = Date.now();
  assert.equal((await lsp.conn.sendRequest(P.getStatus)).running?.jobId, tr.jobId);
  assert.ok(Date.now() - t1 < 2000);
  await lsp.conn.sendNotification('window/workDoneProgress/cancel', { token: tokenOf(lsp, tr.jobId) });
  const c = await lsp.next(P.jobCancelled, (p) => p.jobId === tr.jobId, 120_000);
  // Cancelling lands between batches: another epoch may finish meanwhile, not all of them.
  assert.equal(c.resumable, true);
  assert.ok(c.runId);
  assert.ok(lsp.notes(P.epochMetrics, (p) => p.jobId === tr.jobId).length < 12);
  const status = await lsp.conn.sendRequest(P.getStatus);
  assert.match(status.backend, /^auto: /);

  const info = await lsp.conn.sendRequest(P.workspaceInfo, {});
  assert.deepEqual(info.runs.map((r) => [r.id, r.status]), [[c.runId, 'stopped']]);
  const progress = lsp.notes(P.jobProgress, (p) => p.jobId === tr.jobId && p.epoch !== undefined);
  assert.ok(progress.length > 0 && progress.every((p) => p.epochs === 12));

  const rs = await lsp.conn.sendRequest(P.runJob, { kind: 'resume' });
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === rs.jobId, 120_000);
  assert.equal(done.runId, c.runId);
  assert.ok(existsSync(join(ws, 'out', 'runs', c.runId!, 'model', 'model.json')));
  const epochs = [...lsp.notes(P.epochMetrics, (p) => p.jobId === tr.jobId), ...lsp.notes(P.epochMetrics, (p) => p.jobId === rs.jobId)].map((p) => p.log.epoch);
  assert.deepEqual(epochs, Array.from({ length: 12 }, (_, i) => i), 'resume continues at the next epoch');
});

test('a job process that dies is reported as JOB_CRASHED with its run, which resumes', { skip: process.platform !== 'linux' && 'finds the job process with pgrep' }, async () => {
  const tr = await lsp.conn.sendRequest(P.runJob, { kind: 'train' });
  const first = await lsp.next(P.epochMetrics, (p) => p.jobId === tr.jobId, 120_000);
  const pids = spawnSync('pgrep', ['-P', String(lsp.child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
  assert.equal(pids.length, 1, 'one job process');
  process.kill(pids[0], 'SIGKILL');
  const f = await lsp.next(P.jobFailed, (p) => p.jobId === tr.jobId, 60_000);
  assert.equal(f.code, 'JOB_CRASHED');
  assert.equal(f.internal, true);
  assert.equal(f.runId, first.runId);
  assert.match(f.message, /stopped unexpectedly \(killed by SIGKILL\)/);
  // torch where a Python with torch was timed faster than wasm on this machine (CI's /usr/bin/python3 may be).
  const idle = await lsp.conn.sendRequest(P.getStatus);
  assert.deepEqual({ ...idle, backend: undefined }, { state: 'idle', queued: [], backend: undefined });
  assert.match(idle.backend, /^auto: (wasm|torch)$/);

  const rs = await lsp.conn.sendRequest(P.runJob, { kind: 'resume', runId: first.runId });
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === rs.jobId, 120_000);
  assert.equal(done.runId, first.runId);
  assert.equal(lsp.notes(P.epochMetrics, (p) => p.jobId === rs.jobId).at(-1)!.log.epoch, 11);
});

test('evaluate and report run on the trained model; workspaceInfo lists their files', async () => {
  const ev = await lsp.conn.sendRequest(P.runJob, { kind: 'evaluate' });
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === ev.jobId, 180_000);
  assert.match(done.summary, /ROC AUC/);
  const metrics = done.outputs.find((o) => o.label === 'Metrics')!.path;
  assert.ok(existsSync(metrics));
  const rep = await lsp.conn.sendRequest(P.runJob, { kind: 'report' });
  const rdone = await lsp.next(P.jobFinished, (p) => p.jobId === rep.jobId, 180_000);
  assert.ok(existsSync(join(ws, 'out', 'report.html')));
  assert.match(rdone.summary, /evaluation/);
  const info = await lsp.conn.sendRequest(P.workspaceInfo, {});
  assert.equal(info.report, join(ws, 'out', 'report.html'));
  assert.ok(info.evaluations.some((e) => e.metrics === metrics && e.split === 'test' && e.slideMaps.length > 0));
});

test('evaluate with an archive scores every patient of that other archive (Evaluate on This Archive)', async () => {
  writePatches(join(ws, 'other'), gridSpecs(['90', '91'], 6, 3));
  const ev = await lsp.conn.sendRequest(P.runJob, { kind: 'evaluate', archive: 'other' });
  const done = await lsp.next(P.jobFinished, (p) => p.jobId === ev.jobId, 180_000);
  assert.match(done.summary, /on the external archive other: 12 patches/);
  const metrics = JSON.parse(readFileSync(done.outputs.find((o) => o.label === 'Metrics')!.path, 'utf8'));
  assert.deepEqual([metrics.external.name, metrics.external.patients, metrics.n], ['other', 2, 12]);
  const info = await lsp.conn.sendRequest(P.workspaceInfo, {});
  assert.ok(info.evaluations.some((e) => e.model.endsWith('-on-other') && e.split === 'test'), 'listed for the panels and the side bar');
});

test('a second training while one runs is refused, naming the run; run ids must be plain names', async () => {
  const tr = await lsp.conn.sendRequest(P.runJob, { kind: 'train', epochs: 3 });
  assert.equal(tr.refused, undefined);
  // Refused even before it has started or named its run.
  const early = await lsp.conn.sendRequest(P.runJob, { kind: 'train' });
  assert.equal(early.refused?.running.jobId, tr.jobId);
  assert.match(early.refused!.message, /^Training is already (running|queued)/);
  const p = await lsp.next(P.jobProgress, (x) => x.jobId === tr.jobId && x.runId !== undefined, 120_000);
  for (const req of [{ kind: 'train' }, { kind: 'resume' }, { kind: 'resume', runId: p.runId }] as P.JobRequest[]) {
    const r = await lsp.conn.sendRequest(P.runJob, req);
    assert.ok(r.refused, `${req.kind} was not refused`);
    assert.equal(r.refused.message, `Training is already running (run ${p.runId}).`);
    assert.match(r.refused.hint, /Stop it first, or wait/);
    assert.equal(r.refused.runId, p.runId);
    assert.equal(r.queued, false);
  }
  const st = await lsp.conn.sendRequest(P.getStatus);
  assert.deepEqual([st.running?.jobId, st.queued.length], [tr.jobId, 0], 'nothing was queued');
  // Other jobs still queue behind it.
  const ev = await lsp.conn.sendRequest(P.runJob, { kind: 'evaluate' });
  assert.equal(ev.refused, undefined);
  assert.equal(ev.queued, true);
  await lsp.conn.sendRequest(P.stopJob, { jobId: ev.jobId });

  for (const runId of ['..', '.', '../x', 'a/b']) {
    for (const kind of ['train', 'resume', 'evaluate', 'report'] as const) {
      await assert.rejects(lsp.conn.sendRequest(P.runJob, { kind, runId }), /runId: the run id .*(not a name|may only contain)/, `${kind} ${runId}`);
    }
    await assert.rejects(lsp.conn.sendRequest(P.runJob, { kind: 'predict', patches: 'raw', runId }), /runId/);
  }

  await lsp.conn.sendRequest(P.stopJob, {});
  await lsp.next(P.jobCancelled, (x) => x.jobId === tr.jobId, 120_000);
});

test('cross-validation: fold and epoch progress, refused beside a training either way, cancel leaves it resumable, a rerun finishes it', async () => {
  // Run alone (--test-name-pattern), the workspace is not organized yet.
  if (!existsSync(join(ws, 'out', 'manifest.csv'))) {
    const org = await lsp.conn.sendRequest(P.runJob, { kind: 'organize' });
    await lsp.next(P.jobFinished, (p) => p.jobId === org.jobId);
  }
  const id = 'cv-3fold-seed42';
  await assert.rejects(lsp.conn.sendRequest(P.runJob, { kind: 'cv', id: '../x' }), /id: the cross-validation id/);
  const cv = await lsp.conn.sendRequest(P.runJob, { kind: 'cv', folds: 3, epochs: 2 });
  assert.equal(cv.refused, undefined);
  assert.equal(cv.title, 'Cross-validate by patient');
  const p = await lsp.next(P.jobProgress, (x) => x.jobId === cv.jobId && x.fold !== undefined && x.epoch !== undefined, 120_000);
  assert.deepEqual([p.folds, p.epochs, p.cv], [3, 2, { id, folds: 3, seed: 42 }]);
  assert.match(p.runId!, new RegExp(`^${id}-fold${p.fold}$`));
  // A training, a resume or a second cross-validation is refused while it runs, naming it and its fold's run.
  for (const req of [{ kind: 'train' }, { kind: 'resume' }, { kind: 'cv', folds: 3 }] as P.JobRequest[]) {
    const r = await lsp.conn.sendRequest(P.runJob, req);
    assert.ok(r.refused, `${req.kind} was not refused`);
    assert.match(r.refused.message, new RegExp(`^Cross-validation is already running \\(${id}, run ${id}-fold\\d\\)\\.$`));
    assert.match(r.refused.hint, /Stop it first, or wait/);
    assert.equal(r.refused.running.jobId, cv.jobId);
    assert.deepEqual(r.refused.cv, { id, folds: 3, seed: 42 });
  }
  // The notification says which fold.
  const values = progressOf(lsp, tokenOf(lsp, cv.jobId));
  assert.equal(values[0].title, 'IDC: Cross-validate by patient');
  assert.ok(values.some((v) => /^Fold \d\/3 — Epoch \d\/2/.test(v.message ?? '')), JSON.stringify(values.slice(0, 8)));

  await lsp.conn.sendRequest(P.stopJob, { jobId: cv.jobId });
  const c = await lsp.next(P.jobCancelled, (x) => x.jobId === cv.jobId, 120_000);
  assert.equal(c.resumable, true);
  assert.deepEqual(c.cv, { id, folds: 3, seed: 42 });
  assert.match(c.message, new RegExp(`^Cross-validation ${id} stopped; the finished folds are kept and run ${id}-fold\\d keeps its last finished epoch\\. Run it again to resume\\.$`));

  // Running it again resumes it and writes the pooled evaluation beside the fold runs.
  const again = await lsp.conn.sendRequest(P.runJob, { kind: 'cv', folds: 3, epochs: 2 });
  const done = await lsp.next(P.jobFinished, (x) => x.jobId === again.jobId, 600_000);
  assert.deepEqual(done.cv, { id, folds: 3, seed: 42 });
  const metrics = join(ws, 'out', 'evals', id, 'test', 'metrics.json');
  assert.ok(done.outputs.some((o) => o.path === metrics));
  const m = JSON.parse(readFileSync(metrics, 'utf8')) as { n: number; cv: { rows: { runId: string }[] } };
  assert.deepEqual(m.cv.rows.map((r) => r.runId), [1, 2, 3].map((f) => `${id}-fold${f}`));
  assert.equal(m.n, 60, 'every patch once');
  assert.match(done.summary, new RegExp(`^Cross-validation ${id}: 3 folds by patient, pooled out-of-fold ROC AUC`));
  const info = await lsp.conn.sendRequest(P.workspaceInfo, {});
  assert.ok(info.evaluations.some((e) => e.model === id && e.split === 'test'), 'listed for the panels');

  // And the other way round: a cross-validation while a training runs is refused.
  const tr = await lsp.conn.sendRequest(P.runJob, { kind: 'train', epochs: 3 });
  const r = await lsp.conn.sendRequest(P.runJob, { kind: 'cv', folds: 3 });
  assert.match(r.refused?.message ?? '', /^Training is already (running|queued)/);
  await lsp.conn.sendRequest(P.stopJob, { jobId: tr.jobId });
  await lsp.next(P.jobCancelled, (x) => x.jobId === tr.jobId, 120_000);
});
