/**
 * The side bar's view model (src/core/views/sidebar.ts) on output folders written by hand, broken
 * files included, and Delete's core (src/core/train/delete-run.ts) with real locks.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import {
  affectsSidebar, bestValAuc, buildDatasetNodes, buildEvaluationNodes, buildRunNodes, findNode, liveLockHolder, shortDate, sidebarFlags, sidebarSources,
  trainingProgressText, type SidebarNode, type SidebarSources,
} from '../src/core/views/sidebar';
import { deleteRun, deletionText, planRunDeletion } from '../src/core/train/delete-run';
import { statusText } from '../src/extension/status-text';
import { isIdcError } from '../src/core/errors';
import { tempDir } from './helpers/fixtures';

// ------------------------------------------------------------------------------------- fixtures

function write(file: string, content: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
}

function epoch(e: number, valAuc: number): Record<string, number | boolean> {
  return { epoch: e, loss: 0.5, accuracy: 0.8, precision: 0.7, recall: 0.6, auc: 0.85, val_loss: 0.4, val_accuracy: 0.8, val_precision: 0.7, val_recall: 0.6, val_auc: valAuc, lr: 0.001, seconds: 3, imagesPerSecond: 100 };
}

interface RunSpec { status?: unknown; createdAt?: string; backend?: string; epochs?: number; aucs?: number[]; model?: boolean; extra?: Record<string, unknown> }

function run(out: string, id: string, spec: RunSpec = {}): string {
  const dir = join(out, 'runs', id);
  write(join(dir, 'run.json'), { id, createdAt: spec.createdAt ?? '2026-01-02T10:00:00.000Z', status: spec.status ?? 'finished', backend: spec.backend ?? 'wasm (2 threads); cache mmap', epochs: spec.epochs ?? (spec.aucs ?? [0.8]).length, ...spec.extra });
  write(join(dir, 'history.jsonl'), (spec.aucs ?? [0.8]).map((a, i) => JSON.stringify(epoch(i, a)) + '\n').join(''));
  if (spec.model ?? spec.status === undefined) write(join(dir, 'model', 'model.json'), { modelTopology: {}, weightsManifest: [] });
  return dir;
}

function metrics(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1, createdAt: '2026-01-03T10:00:00.000Z', model: 'r1', runId: 'r1', split: 'test', n: 1200, positives: 300, negatives: 900,
    auc: 0.9512, averagePrecision: 0.88, warnings: [], threshold: 0.5, backend: 'wasm',
    operatingPoints: [{ name: 'default', label: 'working threshold 0.5', threshold: 0.5, recall: 0.81, specificity: 0.93, precision: 0.79, chosenOn: 'config' }],
    intervals: { confidence: 0.95, patients: 4, auc: [0.9034, 0.9871] },
    ...extra,
  };
}

/** A live lock: owned by this test's parent process, alive on this host. */
function liveLock(dir: string, command = 'idc train --run busy'): void {
  write(join(dir, '.idc-lock'), { pid: process.ppid, host: hostname(), startedAt: new Date().toISOString(), command });
}

function deadLock(dir: string): void {
  write(join(dir, '.idc-lock'), { pid: 2 ** 22 + 12345, host: hostname(), startedAt: new Date().toISOString(), command: 'idc train' });
}

const sources = (folder: string, out = join(folder, 'idc-output'), extra: Partial<SidebarSources> = {}): SidebarSources =>
  ({ folder, archive: join(folder, 'data', 'archive'), archiveExists: false, outputDir: out, ...extra });

const byId = (nodes: SidebarNode[], id: string): SidebarNode => {
  const path = findNode(nodes, (n) => n.id === id);
  assert.ok(path, `no node ${id} in ${nodes.map((n) => n.id).join(', ')}`);
  return path.at(-1)!;
};
const words = (n: SidebarNode): string[] => n.contextValue.split(' ');

// ------------------------------------------------------------------------------------- sources

describe('sidebarSources: the folders from idc.config.json', () => {
  test('no config: the defaults, relative to the folder', async () => {
    const folder = tempDir();
    const s = await sidebarSources(folder);
    assert.equal(s.configFile, undefined);
    assert.equal(s.configProblems, undefined);
    assert.equal(s.outputDir, join(folder, 'idc-output'));
    assert.equal(s.archiveExists, false);
  });

  test('a config with a bad field keeps its paths and lists the problem', async () => {
    const folder = tempDir();
    mkdirSync(join(folder, 'arch'));
    write(join(folder, 'idc.config.json'), '{ "paths": { "archive": "arch", "output": "out-x" }, "train": { "epochs": -3 } }');
    const s = await sidebarSources(folder);
    assert.equal(s.outputDir, join(folder, 'out-x'));
    assert.equal(s.archive, join(folder, 'arch'));
    assert.equal(s.archiveExists, true);
    assert.equal(s.configProblems?.length, 1);
    assert.match(s.configProblems![0], /train\.epochs/);
  });

  test('a config that does not parse: the defaults and the syntax error with its position', async () => {
    const folder = tempDir();
    write(join(folder, 'idc.config.json'), '{ "paths": { "output": "o" ');
    const s = await sidebarSources(folder);
    assert.equal(s.configFile, join(folder, 'idc.config.json'));
    assert.equal(s.outputDir, join(folder, 'idc-output'));
    assert.match(s.configProblems![0], /^line 1, column \d+/);
  });
});

// ------------------------------------------------------------------------------------- dataset

describe('Dataset tree', () => {
  test('nothing yet (no config, no archive, no manifest): empty, so the welcome content shows', () => {
    const folder = tempDir();
    assert.deepEqual(buildDatasetNodes(sources(folder)), []);
  });

  test('a config only: folders, and the steps not done yet, with the actions they need', () => {
    const folder = tempDir();
    write(join(folder, 'idc.config.json'), '{}');
    const nodes = buildDatasetNodes(sources(folder, undefined, { configFile: join(folder, 'idc.config.json') }));
    assert.deepEqual(nodes.map((n) => n.label), ['Config', 'Archive', 'Output', 'Manifest', 'Split by patient']);
    assert.equal(byId(nodes, 'dataset:archive').description, 'data/archive (missing)');
    assert.equal(byId(nodes, 'dataset:archive').contextValue, 'idc-archive missing');
    assert.equal(byId(nodes, 'dataset:manifest').contextValue, 'idc-manifest missing');
    assert.equal(byId(nodes, 'dataset:manifest').description, 'not organized yet');
    assert.equal(byId(nodes, 'dataset:split-missing').contextValue, 'idc-split missing');
  });

  test('organized and split: manifest counts, each part with patients, patches and positive rate, and the warnings', () => {
    const folder = tempDir();
    const out = join(folder, 'idc-output');
    mkdirSync(join(folder, 'data', 'archive'), { recursive: true });
    write(join(out, 'manifest.csv'), 'id,patient,x,y,label,width,height,source\n');
    write(join(out, 'manifest.meta.json'), { manifestHash: 'h2' });
    write(join(out, 'organize-report.json'), { kind: 'dir', createdAt: '2026-01-01T00:00:00Z', totals: { files: 7700, patches: 7674, negatives: 5600, positives: 2074, patients: 8, skipped: 26, suspicious: 0, duplicates: 0, edgePatches: 40 } });
    write(join(out, 'split.json'), {
      version: 1, seed: 3, ratios: [0.5, 0.25, 0.25], stratify: true, manifestHash: 'h1', createdAt: '2026-01-01T00:00:00Z',
      patients: { train: ['a', 'b', 'c', 'd'], val: ['e', 'f'], test: ['g', 'h'] },
      summary: { train: { patients: 4, patches: 3850, positives: 1050, positiveRate: 0.2727 }, val: { patients: 2, patches: 1900, positives: 500, positiveRate: 0.2632 }, test: { patients: 2, patches: 1924, positives: 524, positiveRate: 0.2723 } },
      warnings: ['validation holds one class only'],
    });
    const nodes = buildDatasetNodes(sources(folder, out, { archiveExists: true }));
    const manifest = byId(nodes, 'dataset:manifest');
    assert.equal(manifest.description, '7,674 patches · 8 patients · 27.0% IDC');
    assert.match(manifest.tooltip, /26 skipped/);
    const split = byId(nodes, 'dataset:split');
    assert.equal(split.description, 'seed 3 · 50/25/25 · stratified · stale');
    assert.deepEqual(split.children!.map((c) => `${c.label}: ${c.description}`), [
      'train: 4 patients · 3,850 patches · 27.3% IDC',
      'val: 2 patients · 1,900 patches · 26.3% IDC',
      'test: 2 patients · 1,924 patches · 27.2% IDC',
    ]);
    const warnings = byId(nodes, 'dataset:warnings').children!.map((w) => w.label);
    assert.ok(warnings.includes('the split is older than the manifest'), warnings.join('; '));
    assert.ok(warnings.includes('validation holds one class only'));
    assert.ok(warnings.some((w) => /skipped 26/.test(w)));
  });

  test('broken organize report and split: "unreadable" nodes that say why, the rest still shown', () => {
    const folder = tempDir();
    const out = join(folder, 'idc-output');
    write(join(out, 'manifest.csv'), 'id\n');
    write(join(out, 'organize-report.json'), '{"totals": ');
    write(join(out, 'split.json'), '[1, 2]');
    const nodes = buildDatasetNodes(sources(folder, out));
    const manifest = byId(nodes, 'dataset:manifest');
    assert.equal(manifest.description, 'unreadable');
    assert.match(manifest.tooltip, /organize-report\.json is not valid JSON/);
    const split = byId(nodes, 'dataset:split');
    assert.equal(split.description, 'unreadable');
    assert.match(split.tooltip, /split\.json has no summary/);
    assert.ok(byId(nodes, 'dataset:warnings').children!.some((w) => w.label === 'the archive is missing'));
  });

  test('config problems show under the config node', () => {
    const folder = tempDir();
    const nodes = buildDatasetNodes(sources(folder, undefined, { configFile: join(folder, 'idc.config.json'), configProblems: ['train.epochs: must be >= 1'] }));
    const config = byId(nodes, 'dataset:config');
    assert.equal(config.description, 'idc.config.json · 1 problem');
    assert.deepEqual(config.children!.map((c) => c.label), ['train.epochs: must be >= 1']);
  });
});

// ------------------------------------------------------------------------------------- runs

describe('Runs tree', () => {
  test('a finished run: status, best validation AUC and its epoch from history.jsonl, backend, start time', () => {
    const out = tempDir();
    run(out, 'r1', { aucs: [0.81, 0.912, 0.9] });
    const [n] = buildRunNodes(out);
    assert.equal(n.label, 'r1');
    assert.equal(n.description, `finished · AUC 0.912 (epoch 2) · wasm (2 threads) · ${shortDate('2026-01-02T10:00:00.000Z')}`);
    assert.deepEqual(words(n), ['idc-run', 'readable', 'status-finished', 'model']);
    assert.match(n.tooltip, /Best validation AUC: 0\.9120 at epoch 2/);
    assert.match(n.tooltip, /Backend: wasm \(2 threads\); cache mmap/);
    assert.equal(n.open, 'idc.showTraining');
    assert.equal(n.icon, 'pass-filled');
  });

  test('every status: interrupted, stopped and failed are resumable; an unknown one is shown as it is', () => {
    const out = tempDir();
    run(out, 'open', { status: 'running', epochs: 5, aucs: [0.7], createdAt: '2026-01-05T00:00:00Z' });
    run(out, 'stopped', { status: 'stopped', epochs: 5, aucs: [0.7, 0.75], createdAt: '2026-01-04T00:00:00Z' });
    run(out, 'failed', { status: 'failed', epochs: 5, aucs: [0.7], createdAt: '2026-01-03T00:00:00Z', extra: { error: 'the loss became NaN', stoppedAt: '2026-01-03T01:00:00Z' } });
    run(out, 'odd', { status: 'queued-on-cluster', epochs: 5, aucs: [], createdAt: '2026-01-02T00:00:00Z' });
    const nodes = buildRunNodes(out);
    assert.deepEqual(nodes.map((n) => n.label), ['open', 'stopped', 'failed', 'odd'], 'newest first');
    assert.match(nodes[0].description!, /^interrupted at epoch 1\/5 · AUC 0\.700 \(epoch 1\)/);
    assert.match(nodes[1].description!, /^stopped at epoch 2\/5/);
    assert.match(nodes[2].description!, /^failed at epoch 1\/5/);
    assert.match(nodes[2].tooltip, /Error: the loss became NaN/);
    assert.match(nodes[3].description!, /^queued-on-cluster at epoch 0\/5/);
    assert.match(nodes[3].tooltip, /no epoch yet/);
    for (const n of nodes) assert.ok(words(n).includes('resumable'), `${n.label}: ${n.contextValue}`);
    for (const n of nodes) assert.ok(!words(n).includes('model'));
  });

  test('the run the language server trains: "training epoch x/y" from the job event, as the status bar says it', () => {
    const out = tempDir();
    run(out, 'r2', { status: 'running', epochs: 20, aucs: [0.7, 0.8] });
    const live = { runId: 'r2', epoch: 3, epochs: 20 };
    const [n] = buildRunNodes(out, { live });
    assert.match(n.description!, /^training epoch 3\/20 · AUC 0\.800 \(epoch 2\)/);
    assert.ok(words(n).includes('live'));
    assert.ok(!words(n).includes('resumable'));
    assert.equal(n.icon, 'sync~spin');
    const bar = statusText({ state: 'running', running: { jobId: '1', kind: 'train', title: 'Train model' }, queued: [], backend: 'wasm' },
      { jobId: '1', kind: 'train', title: 'Train model', phase: 'train.epoch', label: 'Epoch 3', done: 4, total: 10, unit: 'batch', epoch: 3, epochs: 20, runId: 'r2' }, 'up');
    assert.equal(bar, '$(sync~spin) IDC: training epoch 3/20 · wasm');
    assert.ok(n.description!.startsWith(`training ${trainingProgressText(live)}`) && bar.includes(trainingProgressText(live)));
  });

  test('a run locked by a live process (a terminal) is training; a dead owner\'s lock leaves it interrupted', () => {
    const out = tempDir();
    liveLock(run(out, 'busy', { status: 'running', epochs: 4, aucs: [0.7], createdAt: '2026-01-02T00:00:00Z' }));
    deadLock(run(out, 'dead', { status: 'running', epochs: 4, aucs: [0.7], createdAt: '2026-01-01T00:00:00Z' }));
    const [busy, dead] = buildRunNodes(out);
    assert.match(busy.description!, /^training epoch 2\/4/);
    assert.ok(words(busy).includes('locked') && !words(busy).includes('resumable') && !words(busy).includes('live'));
    assert.match(busy.tooltip, new RegExp(`In use by pid ${process.ppid} \\(${hostname()}\\): idc train --run busy`));
    assert.match(dead.description!, /^interrupted/);
    assert.ok(words(dead).includes('resumable') && !words(dead).includes('locked'));
    assert.equal(liveLockHolder(join(out, 'runs', 'dead')), undefined);
  });

  test('a new run preparing its data (locked, no run.json yet) is not "unreadable"', () => {
    const out = tempDir();
    liveLock(join(out, 'runs', 'fresh'));
    const [n] = buildRunNodes(out);
    assert.match(n.description!, /^preparing data/);
  });

  test('broken run folders show as "unreadable" with the reason in the tooltip, after the readable ones', () => {
    const out = tempDir();
    run(out, 'good');
    write(join(out, 'runs', 'badjson', 'run.json'), '{"id": "badjson", "status": ');
    mkdirSync(join(out, 'runs', 'empty'), { recursive: true });
    write(join(out, 'runs', 'other', 'run.json'), { id: 'someone-else', status: 'finished', createdAt: '2026-01-01T00:00:00Z' });
    write(join(out, 'runs', 'nostatus', 'run.json'), { id: 'nostatus', status: 3 });
    write(join(out, 'runs', 'notes.txt'), 'not a run');
    const nodes = buildRunNodes(out);
    assert.deepEqual(nodes.map((n) => n.label), ['good', 'badjson', 'empty', 'nostatus', 'other']);
    const reasons = Object.fromEntries(nodes.slice(1).map((n) => [n.label, n.tooltip]));
    assert.match(reasons.badjson, /Unreadable: run\.json is not valid JSON \(/);
    assert.match(reasons.empty, /Unreadable: run\.json is missing/);
    assert.match(reasons.other, /names run "someone-else", not its folder "other"/);
    assert.match(reasons.nostatus, /run\.json has no status/);
    for (const n of nodes.slice(1)) {
      assert.equal(n.description, 'unreadable');
      assert.deepEqual(words(n), ['idc-run', 'unreadable'], 'Delete, Reveal and Copy still apply; nothing that reads it does');
      assert.equal(n.open, undefined);
    }
  });

  test('a damaged history: the good epochs still count, and the node says the history is unreadable and where', () => {
    const out = tempDir();
    const dir = run(out, 'r1', { aucs: [0.8, 0.9] });
    write(join(dir, 'history.jsonl'), `${JSON.stringify(epoch(0, 0.8))}\n{broken\n${JSON.stringify(epoch(2, 0.85))}\n`);
    const dirHistory = run(out, 'r2', { createdAt: '2026-01-01T00:00:00Z' });
    rmSync(join(dirHistory, 'history.jsonl'));
    mkdirSync(join(dirHistory, 'history.jsonl'));
    const [r1, r2] = buildRunNodes(out);
    assert.match(r1.description!, /AUC 0\.850 \(epoch 3\) .*· history unreadable$/);
    assert.match(r1.tooltip, /line 2 is not an epoch record/);
    assert.ok(words(r1).includes('damaged'));
    assert.equal(r1.icon, 'warning');
    assert.match(r2.description!, /history unreadable/);
    assert.match(r2.tooltip, /history\.jsonl cannot be read/);
  });

  test('no output folder, or no runs: an empty tree, not an exception', () => {
    assert.deepEqual(buildRunNodes(join(tempDir(), 'missing')), []);
    assert.deepEqual(buildEvaluationNodes(join(tempDir(), 'missing')), []);
  });

  test('a cross-validation is a group of its folds (finished, interrupted, pending), with the pooled AUC', () => {
    const out = tempDir();
    run(out, 'plain', { createdAt: '2026-01-01T00:00:00Z' });
    write(join(out, 'evals', 'cv-3fold-seed1', 'cv.json'), { version: 1, id: 'cv-3fold-seed1', folds: [['a'], ['b'], ['c']], warnings: ['fold 3 has one class'], seed: 1, manifestHash: 'h', configHash: 'c', createdAt: '2026-01-02T00:00:00Z' });
    run(out, 'cv-3fold-seed1-fold1', { aucs: [0.7, 0.9] });
    run(out, 'cv-3fold-seed1-fold2', { status: 'running', epochs: 4, aucs: [0.6] });
    const nodes = buildRunNodes(out);
    assert.deepEqual(nodes.map((n) => n.id), ['cv:cv-3fold-seed1', 'run:plain'], 'fold runs only inside their group');
    const cv = nodes[0];
    assert.equal(cv.description, `1/3 folds · ${shortDate('2026-01-02T00:00:00Z')}`);
    assert.deepEqual(cv.children!.map((c) => `${c.label}: ${c.description?.split(' · ')[0]}`), ['fold 1: finished', 'fold 2: interrupted at epoch 1/4', 'fold 3: pending']);
    assert.ok(words(cv.children![0]).includes('fold'));
    assert.ok(!words(cv.children![1]).includes('resumable'), 'a fold resumes with its cross-validation, not alone');
    assert.ok(words(cv).includes('resumable') && !words(cv).includes('pooled'));
    assert.match(cv.tooltip, /Warning: fold 3 has one class/);
    // The path to a fold, for reveal.
    assert.deepEqual(findNode(nodes, (n) => n.id === 'run:cv-3fold-seed1-fold2')!.map((n) => n.id), ['cv:cv-3fold-seed1', 'run:cv-3fold-seed1-fold2']);

    // Live: the fold being trained, and the group says the fold and the epoch.
    const live = buildRunNodes(out, { live: { runId: 'cv-3fold-seed1-fold2', epoch: 2, epochs: 4, fold: 2, folds: 3, cvId: 'cv-3fold-seed1' } });
    assert.match(live[0].description!, /^cross-validating fold 2\/3, epoch 2\/4/);
    assert.ok(live[0].expanded);
    assert.match(live[0].children![1].description!, /^training epoch 2\/4/);

    // Done: the pooled evaluation.
    write(join(out, 'evals', 'cv-3fold-seed1', 'test', 'metrics.json'), metrics({ model: 'cv', runId: undefined, cv: { id: 'cv-3fold-seed1', folds: 3, seed: 1, rows: [], mean: {}, sd: {} } }));
    const done = buildRunNodes(out)[0];
    assert.match(done.description!, /pooled AUC 0\.951/);
    assert.ok(words(done).includes('pooled'));
    assert.equal(done.evaluation, 'cv-3fold-seed1/test');
  });

  test('ensembles are listed with their member runs; a member that is gone is flagged', () => {
    const out = tempDir();
    run(out, 'a');
    write(join(out, 'evals', 'ensemble-a+b', 'test', 'metrics.json'), metrics({ model: 'ensemble', runId: undefined, ensemble: ['a', 'b'] }));
    const nodes = buildRunNodes(out);
    const group = byId(nodes, 'ensembles');
    const ens = group.children![0];
    assert.equal(ens.evaluation, 'ensemble-a+b/test');
    assert.equal(ens.description, '2 runs · test AUC 0.951');
    assert.deepEqual(ens.children!.map((m) => [m.label, m.contextValue]), [['a', 'idc-member readable'], ['b', 'idc-member missing']]);
  });

  test('bestValAuc skips epochs without a finite validation AUC', () => {
    assert.deepEqual(bestValAuc([epoch(0, Number.NaN), epoch(1, 0.7), epoch(2, 0.65)] as never), { auc: 0.7, epoch: 1 });
    assert.equal(bestValAuc([]), undefined);
  });
});

// ------------------------------------------------------------------------------------- evaluations

describe('Evaluations tree', () => {
  test('each evaluation: model, split or external archive, ROC AUC with its patient interval, working threshold', () => {
    const out = tempDir();
    run(out, 'r1');
    write(join(out, 'runs', 'r1', 'eval', 'test', 'metrics.json'), metrics());
    mkdirSync(join(out, 'runs', 'r1', 'eval', 'test', 'slidemaps'), { recursive: true });
    write(join(out, 'runs', 'r1', 'eval', 'test', 'slidemaps', 'p1.png'), 'png');
    write(join(out, 'evals', 'r1-on-other', 'test', 'metrics.json'), metrics({ createdAt: '2026-01-04T00:00:00Z', external: { name: 'other', archive: '/data/other', patients: 5, overlap: [] }, intervals: undefined, threshold: 0.3 }));
    write(join(out, 'evals', 'ensemble-r1+r2', 'val', 'metrics.json'), metrics({ createdAt: '2026-01-02T00:00:00Z', split: 'val', runId: undefined, ensemble: ['r1', 'r2'] }));
    const nodes = buildEvaluationNodes(out);
    assert.deepEqual(nodes.map((n) => n.label), ['r1 on other', 'r1/test', 'ensemble-r1+r2/val']);
    const [ext, own, ens] = nodes;
    assert.equal(own.description, 'AUC 0.951 (0.903–0.987) · threshold 0.5');
    assert.equal(own.evaluation, 'r1/test');
    assert.match(own.tooltip, /95% CI 0\.903–0\.987 by patient \(4 patients\)/);
    assert.match(own.tooltip, /Working threshold 0\.5: recall 0\.810, specificity 0\.930/);
    assert.deepEqual(words(own), ['idc-evaluation', 'readable', 'kind-run', 'reportable', 'slidemaps']);
    assert.equal(ext.description, 'AUC 0.951 · threshold 0.3');
    assert.match(ext.tooltip, /Scored: external archive other \(\/data\/other, 5 patients\)/);
    assert.ok(!words(ext).includes('reportable'));
    assert.ok(words(ens).includes('kind-ensemble') && !words(ens).includes('reportable'));
  });

  test('a broken or incomplete metrics.json is "unreadable" with the reason; one being written says so', () => {
    const out = tempDir();
    write(join(out, 'runs', 'r1', 'eval', 'test', 'metrics.json'), '{"auc": 0.9, ');
    write(join(out, 'runs', 'r1', 'eval', 'val', 'metrics.json'), { createdAt: 'x' });
    write(join(out, 'evals', 'm', 'test', 'metrics.json'), metrics({ runId: undefined, model: '/models/m/model.json' }));
    liveLock(join(out, 'evals', 'm', 'test'), 'idc evaluate --model m');
    const nodes = buildEvaluationNodes(out);
    const broken = byId(nodes, 'eval:r1/test');
    assert.equal(broken.description, 'unreadable');
    assert.match(broken.tooltip, /metrics\.json is not valid JSON/);
    assert.match(byId(nodes, 'eval:r1/val').tooltip, /has no AUC or patch count/);
    const writing = byId(nodes, 'eval:m/test');
    assert.match(writing.description!, /^being written · AUC 0\.951/);
    assert.match(writing.tooltip, /outside model \/models\/m\/model\.json/);
    assert.ok(words(writing).includes('locked') && words(writing).includes('kind-model'));
  });
});

test('affectsSidebar: the files the trees read and the folders holding them, not caches, checkpoints or images', () => {
  for (const p of ['manifest.csv', 'split.json', 'organize-report.json', 'runs', 'runs/r1', 'runs/r1/run.json', 'runs/r1/history.jsonl', 'runs/r1/.idc-lock',
    'runs/r1/model', 'runs/r1/model/model.json', 'runs/r1/eval', 'runs/r1/eval/test', 'runs/r1/eval/test/metrics.json', 'runs/r1/eval/test/slidemaps',
    'evals', 'evals/cv', 'evals/cv/cv.json', 'evals/cv/test', 'evals/cv/test/metrics.json', 'evals/cv/test/.idc-lock']) assert.ok(affectsSidebar(p), p);
  for (const p of ['cache/train.u8', 'runs/r1/checkpoint/weights.bin', 'runs/r1/history.jsonl.tmp-1', 'runs/r1/eval/test/gradcam/p.png', 'runs/r1/eval/test/predictions.csv',
    '.idc-organize/journal.jsonl', 'external/other/manifest.csv', 'report.html', 'runs/r1/eval/test/slidemaps/p1.png']) assert.ok(!affectsSidebar(p), p);
});

test('sidebarFlags: what the context keys say', () => {
  const folder = tempDir();
  const out = join(folder, 'idc-output');
  assert.deepEqual(sidebarFlags(sources(folder, out)), { hasConfig: false, archiveFound: false, hasManifest: false, hasSplit: false, hasModel: false, hasRuns: false, hasEvaluations: false });
  write(join(out, 'manifest.csv'), 'id\n');
  run(out, 'r1', { status: 'running' });
  assert.deepEqual(sidebarFlags(sources(folder, out)), { hasConfig: false, archiveFound: false, hasManifest: true, hasSplit: false, hasModel: false, hasRuns: true, hasEvaluations: false });
  run(out, 'r2');
  write(join(out, 'runs', 'r2', 'eval', 'test', 'metrics.json'), metrics());
  const f = sidebarFlags(sources(folder, out, { configFile: 'x' }));
  assert.ok(f.hasModel && f.hasEvaluations && f.hasConfig);
});

// ------------------------------------------------------------------------------------- delete

describe('Delete Run', () => {
  test('the confirmation names the folder, what it holds and what stays behind', () => {
    const out = tempDir();
    const dir = run(out, 'cv-x-fold2', { aucs: [0.8, 0.9] });
    write(join(dir, 'eval', 'test', 'metrics.json'), metrics());
    write(join(out, 'evals', 'cv-x', 'cv.json'), { version: 1, id: 'cv-x', folds: [['a'], ['b'], ['c']], warnings: [], seed: 1, manifestHash: 'h', configHash: 'c', createdAt: '2026-01-02T00:00:00Z' });
    write(join(out, 'evals', 'ensemble-a+cv-x-fold2', 'test', 'metrics.json'), metrics({ ensemble: ['a', 'cv-x-fold2'] }));
    const plan = planRunDeletion(out, 'cv-x-fold2');
    assert.equal(plan.files, 4, 'run.json, history.jsonl, model.json, metrics.json (and nothing outside it)');
    assert.deepEqual(plan.evaluations, ['test']);
    assert.deepEqual(plan.cv, { id: 'cv-x', fold: 2 });
    assert.deepEqual(plan.ensembles, ['ensemble-a+cv-x-fold2']);
    const t = deletionText(plan);
    assert.equal(t.message, 'Delete run cv-x-fold2?');
    assert.ok(t.detail.includes(`permanently deletes ${dir} (4 files,`), t.detail);
    assert.match(t.detail, /and its evaluation on test\./);
    assert.match(t.detail, /fold 2 of cross-validation cv-x/);
    assert.match(t.detail, /ensemble-a\+cv-x-fold2 averaged it and stays/);
    assert.match(t.detail, /cannot be undone/);
  });

  test('deletes the run folder, and only it', () => {
    const out = tempDir();
    const dir = run(out, 'r1');
    run(out, 'r2');
    deadLock(dir); // a stale lock does not count
    deleteRun(out, 'r1');
    assert.equal(existsSync(dir), false);
    assert.ok(existsSync(join(out, 'runs', 'r2', 'run.json')));
  });

  test('refused while a live job holds the run or one of its evaluations; nothing is deleted', () => {
    const out = tempDir();
    const busy = run(out, 'busy');
    liveLock(busy);
    assert.throws(() => deleteRun(out, 'busy'), (e: unknown) => isIdcError(e) && e.code === 'RUN_LOCKED' && new RegExp(`in use by pid ${process.ppid}`).test(e.message));
    assert.ok(existsSync(join(busy, 'run.json')) && existsSync(join(busy, '.idc-lock')));
    const evaluating = run(out, 'evaluating');
    write(join(evaluating, 'eval', 'test', 'metrics.json'), metrics());
    liveLock(join(evaluating, 'eval', 'test'), 'idc evaluate --run evaluating');
    assert.throws(() => deleteRun(out, 'evaluating'), /Evaluation evaluating\/test is in use/);
    assert.ok(existsSync(join(evaluating, 'run.json')));
    assert.ok(!existsSync(join(evaluating, '.idc-lock')), 'the run lock taken before the refusal is given back');
  });

  test('a path for a run id, or a run that is not there, is refused before anything is read', () => {
    const out = tempDir();
    assert.throws(() => planRunDeletion(out, '../etc'), (e: unknown) => isIdcError(e) && e.code === 'BAD_RUN_ID');
    assert.throws(() => deleteRun(out, '..'), (e: unknown) => isIdcError(e) && e.code === 'BAD_RUN_ID');
    assert.throws(() => deleteRun(out, 'nope'), (e: unknown) => isIdcError(e) && e.code === 'NO_RUN');
  });
});

test('statusText and trainingProgressText: a cross-validation names the fold and, while training, the epoch', () => {
  const s = { state: 'running' as const, running: { jobId: '7', kind: 'cv' as const, title: 'Cross-validate' }, queued: [], backend: 'auto: wasm' };
  const base = { jobId: '7', kind: 'cv' as const, title: 'Cross-validate', done: 1, total: 2, unit: 'x', fold: 2, folds: 5 };
  assert.equal(statusText(s, { ...base, phase: 'train.epoch', label: 'Epoch 3', epoch: 3, epochs: 20 }, 'up'), '$(sync~spin) IDC: cross-validating fold 2/5, epoch 3/20 · wasm');
  assert.equal(statusText(s, { ...base, phase: 'cache', label: 'Caching' }, 'up'), '$(sync~spin) IDC: cross-validating fold 2/5 — Caching · wasm');
  assert.equal(trainingProgressText({ fold: 2, folds: 5 }), 'fold 2/5');
  assert.equal(trainingProgressText({}), '');
});
