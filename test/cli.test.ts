import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir, writePatches, gridSpecs, treeChecksum } from './helpers/fixtures';

// The CLI is tested as users run it: the bundle built by `npm test`'s build step.
const CLI = resolve(__dirname, '../dist/cli.js');
const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('help, unknown commands and bad flags exit 2 with guidance', () => {
  const cwd = tempDir();
  const help = idc(['--help'], cwd);
  assert.equal(help.code, 0);
  assert.match(help.out, /idc organize/);
  const unknown = idc(['frobnicate'], cwd);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /Unknown command "frobnicate"/);
  const badFlag = idc(['split', '--ratios', '0.5,0.5'], cwd);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /--ratios takes three numbers/);
  const badOpt = idc(['organize', '--nope'], cwd);
  assert.equal(badOpt.code, 2);
  assert.match(badOpt.err, /Unknown option '--nope'/);
});

test('user errors exit 1 with the file, a hint and no stack trace', () => {
  const cwd = tempDir();
  const r = idc(['organize', 'missing-archive', '--out', 'out'], cwd);
  assert.equal(r.code, 1);
  assert.match(r.err, /Archive not found: .*missing-archive/);
  assert.match(r.err, /paths\.archive/);
  assert.doesNotMatch(r.err, /\n\s+at /);
  const noManifest = idc(['split', '--out', 'out'], cwd);
  assert.equal(noManifest.code, 1);
  assert.match(noManifest.err, /No manifest at .*manifest\.csv/);
  assert.match(noManifest.err, /idc organize/);
  writeFileSync(join(cwd, 'idc.config.json'), '{ "split": { "ratios": [0.5, 0.6, 0.1] } }');
  const badConfig = idc(['split'], cwd);
  assert.equal(badConfig.code, 1);
  assert.match(badConfig.err, /split\.ratios/);
});

test('config init writes defaults the CLI then reads; flags override the file', () => {
  const cwd = tempDir();
  assert.equal(idc(['config', 'init'], cwd).code, 0);
  assert.ok(existsSync(join(cwd, 'idc.config.json')));
  assert.equal(idc(['config', 'init'], cwd).code, 1, 'refuses to overwrite');
  const archive = join(cwd, 'raw');
  writePatches(archive, gridSpecs(['11', '12', '13', '14'], 5, 2));
  const cfg = JSON.parse(readFileSync(join(cwd, 'idc.config.json'), 'utf8'));
  cfg.paths = { archive: 'raw', output: 'results' };
  cfg.split.seed = 7;
  writeFileSync(join(cwd, 'idc.config.json'), JSON.stringify(cfg));
  assert.equal(idc(['organize', '-q'], cwd).code, 0);
  assert.ok(existsSync(join(cwd, 'results', 'manifest.csv')), 'paths.output from the config');
  const s = idc(['split', '--seed', '9', '--ratios', '0.5,0.25,0.25'], cwd);
  assert.equal(s.code, 0, s.err);
  const split = JSON.parse(readFileSync(join(cwd, 'results', 'split.json'), 'utf8'));
  assert.equal(split.seed, 9);
  assert.deepEqual(split.ratios, [0.5, 0.25, 0.25]);
  assert.match(s.out, /patient overlap: none/);
});

test('real sample through the CLI (worker threads): organize + split, archive untouched', { skip: !existsSync(SAMPLE) && 'shared sample not present' }, () => {
  const before = treeChecksum(SAMPLE);
  const cwd = tempDir();
  const o = idc(['organize', SAMPLE, '--out', 'out'], cwd);
  assert.equal(o.code, 0, o.err);
  assert.match(o.out, /patients 16, patches 4578 \(class 0: 929, class 1: 3649/);
  assert.match(o.out, /8957_idx5_x2251_y701_class1\.png: edge patch 31x50/);
  assert.match(o.out, /8975_idx5_x3601_y1701_class0\.png: edge patch 32x50/);
  const s = idc(['split', '--out', 'out'], cwd);
  assert.equal(s.code, 0, s.err);
  assert.match(s.out, /patient overlap: none \(checked 16 patients\)/);
  const split = JSON.parse(readFileSync(join(cwd, 'out', 'split.json'), 'utf8'));
  const all = [...split.patients.train, ...split.patients.val, ...split.patients.test];
  assert.equal(all.length, 16);
  assert.equal(new Set(all).size, 16);
  assert.equal(idc(['organize', SAMPLE, '--out', 'out'], cwd).out.includes('up to date'), true);
  assert.deepEqual(treeChecksum(SAMPLE), before);
});

test('demo runs the main job end to end on a small synthetic archive', () => {
  const cwd = tempDir();
  const r = idc(['demo', '--dir', 'demo', '--patients', '4', '-q'], cwd);
  assert.equal(r.code, 0, r.err);
  for (const f of ['output/manifest.csv', 'output/organize-report.json', 'output/split.json']) assert.ok(existsSync(join(cwd, 'demo', f)), f);
  assert.match(r.out, /patient overlap: none/);
});

test('a config file holding [] is an input error naming the file (exit 1)', () => {
  const cwd = tempDir();
  writeFileSync(join(cwd, 'idc.config.json'), '[]');
  const r = idc(['split', '--seed', '3'], cwd);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /idc\.config\.json/);
  assert.match(r.err, /must hold a JSON object/);
});

test('bad flag values are usage errors naming the flag (exit 2), with the config schema\'s bounds', () => {
  const cwd = tempDir();
  const cases: [string[], RegExp][] = [
    [['train', '--batch-size', '0'], /--batch-size must be >= 1 \(got 0\)/],
    [['train', '--epochs', '0'], /--epochs must be >= 1 \(got 0\)/],
    [['train', '--backend', 'nonsense'], /--backend must be one of "auto", .*"cpu", "torch" \(got "nonsense"\)/],
    [['evaluate', '--split', 'tset'], /--split must be one of "test", "val", "train" \(got "tset"\)/],
    [['report', '--split', 'tset'], /--split must be one of/],
    [['predict', 'somewhere', '--backend', 'gpu'], /--backend must be one of/],
    [['split', '--ratios', '0.7,0.7,0'], /--ratios must sum to 1 \(they sum to 1\.4\)/],
    [['split', '--ratios', '1.5,-0.5,0'], /--ratios value 1 must be <= 1 \(got 1\.5,-0\.5,0\)[^]*--ratios value 2 must be >= 0/],
    [['split', '--seed=-1'], /--seed must be >= 0 \(got -1\)/],
    [['synth', 'x', '--patients', '0'], /--patients must be >= 1 \(got 0\)/],
    [['organize', '--materialize', 'hard'], /--materialize must be one of "none", "link", "copy" \(got "hard"\)/],
    [['demo', '--epochs', '0'], /--epochs must be >= 1 \(got 0\)/],
  ];
  for (const [args, re] of cases) {
    const r = idc(args, cwd);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re, args.join(' '));
    assert.doesNotMatch(r.err, /hovering|Invalid settings|\n\s+at /, args.join(' '));
  }
  assert.ok(!existsSync(join(cwd, 'x')), 'nothing ran');
});

test('a closed stdout (idc … | head -1) ends the command quietly: no stack trace, exit 141 as for SIGPIPE', async () => {
  const cwd = tempDir();
  writePatches(join(cwd, 'raw'), gridSpecs(['11', '12'], 3, 1));
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'organize', 'raw', '--out', 'out', '-q'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => { err += c; });
  // The reader goes away before the command prints, as `head` does after its first line.
  child.stdout.destroy();
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.doesNotMatch(err, /EPIPE|Internal error|\n\s+at /);
  assert.equal(code, 141, err);
  assert.ok(existsSync(join(cwd, 'out', 'manifest.csv')), 'the work itself was done');
});

test('config init --preset notebook writes the reference notebook recipe; an unknown preset is a usage error', () => {
  const cwd = tempDir();
  const r = idc(['config', 'init', '--preset', 'notebook'], cwd);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /notebook preset/);
  const c = JSON.parse(readFileSync(join(cwd, 'idc.config.json'), 'utf8'));
  assert.deepEqual(
    [c.train.epochs, c.train.batchSize, c.train.classWeights, c.train.earlyStopping.minDelta, c.train.earlyStopping.patience, c.train.earlyStopping.startFromEpoch, c.train.earlyStopping.restoreBestWeights, c.train.reduceLrOnPlateau.factor, c.train.reduceLrOnPlateau.patience, c.train.reduceLrOnPlateau.minLr, c.train.loss, c.train.focalGamma],
    [60, 32, { 0: 1, 1: 4.2 }, 0.001, 5, 10, true, 0.5, 3, 1e-6, 'focal', 2],
  );
  // The notebook's regularization and monitored metric, whatever the defaults are.
  assert.deepEqual([c.model.dropout, c.model.l2, c.model.bnMomentum, c.train.earlyStopping.monitor, c.train.reduceLrOnPlateau.monitor, c.data.stainNormalization], [0.5, 0.01, 0.99, 'val_loss', 'val_loss', 'none']);
  const bad = idc(['config', 'init', '--preset', 'keras', '--force'], tempDir());
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--preset must be one of notebook/);
});
