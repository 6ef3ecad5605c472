import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, symlinkSync, existsSync, readFileSync, readdirSync, chmodSync, chownSync, copyFileSync, truncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { organize, REPORT_FILE, type OrganizeReport } from '../src/core/organize/organize';
import { tempDir, makePng, writePatches, gridSpecs, treeChecksum } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');
const ROOT = process.getuid?.() === 0;
/** A sparse file over the 1 MiB patch limit (small enough for treeChecksum to hash). */
const HUGE = 8 << 20;

const issueFor = (r: OrganizeReport, path: string) => r.issues.find((i) => i.path === path);

function idc(args: string[], cwd: string, timeout = 60_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout });
  return { code: r.status, out: r.stdout, err: r.stderr, signal: r.signal };
}

/** Runs `fn` on a fresh tmpfs of `size` (mount options `opts`); skips with a reason where mounting is impossible. */
function withTmpfs(t: { skip(reason: string): void }, size: string, opts: string, fn: (mnt: string) => void | Promise<void>): Promise<void> | void {
  if (!ROOT) { t.skip('needs root to mount a tmpfs'); return; }
  const mnt = tempDir();
  try { execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${opts ? `,${opts}` : ''}`, 'tmpfs', mnt], { stdio: 'ignore' }); } catch { t.skip('cannot mount tmpfs here'); return; }
  return (async () => {
    try { await fn(mnt); } finally { execFileSync('umount', [mnt]); }
  })();
}

test('output guard compares real paths and whole segments: a child named ..out, a symlink into the archive, an archive through a symlink', async () => {
  const base = tempDir();
  const arch = join(base, 'arch');
  writePatches(arch, gridSpecs(['1'], 2, 1));
  symlinkSync(join(arch, '1'), join(base, 'link'));
  symlinkSync(arch, join(base, 'alink'));
  const before = treeChecksum(arch);
  await assert.rejects(organize({ archive: arch, out: join(arch, '..out') }), /inside the archive/);
  await assert.rejects(organize({ archive: arch, out: join(base, 'link', 'out') }), /inside the archive/);
  await assert.rejects(organize({ archive: join(base, 'alink'), out: join(arch, 'out') }), /inside the archive/);
  await assert.rejects(organize({ archive: arch, out: join(base, 'alink') }), /archive folder itself/);
  await assert.rejects(organize({ archive: arch, out: join(base, 'alink', 'new', 'deeper') }), /inside the archive/);
  const cli = idc(['organize', 'arch', '--out', 'arch/..out', '-q'], base);
  assert.equal(cli.code, 1, cli.err);
  assert.match(cli.err, /inside the archive/);
  assert.deepEqual(treeChecksum(arch), before, 'nothing written into the archive');
  // A sibling whose name merely starts with ".." is outside.
  const ok = await organize({ archive: arch, out: join(base, '..out') });
  assert.equal(ok.report.totals.patches, 2);
});

test('an output on a read-only file system is a user error naming the path (exit 1, no stack)', (t) => withTmpfs(t, '1m', 'ro', (mnt) => {
  const work = tempDir();
  writePatches(join(work, 'arch'), gridSpecs(['1'], 2, 1));
  const r = idc(['organize', 'arch', '--out', join(mnt, 'out'), '-q'], work);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, new RegExp(`${mnt}/out.* is on a read-only file system`));
  assert.match(r.err, /Choose a writable output folder/);
  assert.doesNotMatch(r.err, /Internal error|\n\s+at /);
}));

test('an output folder without write permission is a user error naming the path (exit 1, no stack)', () => {
  const work = tempDir();
  const arch = join(work, 'arch');
  writePatches(arch, gridSpecs(['1'], 2, 1));
  const out = join(work, 'out');
  mkdirSync(out);
  chmodSync(out, 0o555);
  let cli = CLI;
  const opts: { uid?: number; gid?: number } = {};
  if (ROOT) {
    // root writes anywhere: run as "nobody", from a copy of the bundle nobody can read.
    const bin = tempDir();
    for (const f of ['cli.js', 'check.worker.js']) copyFileSync(join(CLI, '..', f), join(bin, f));
    for (const d of [work, bin]) chmodSync(d, 0o755);
    cli = join(bin, 'cli.js');
    Object.assign(opts, { uid: 65534, gid: 65534 });
  }
  const r = spawnSync(process.execPath, [cli, 'organize', arch, '--out', out, '-q'], { ...opts, cwd: work, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`No permission to write ${out}`));
  assert.match(r.stderr, /Choose an output folder you can write to/);
  assert.doesNotMatch(r.stderr, /Internal error|\n\s+at /);
  assert.deepEqual(readdirSync(out), []);
});

test('a full disk while appending the organize journal is a user error naming the journal', (t) => withTmpfs(t, '64k', '', async (mnt) => {
  const arch = tempDir();
  // Enough patches that the journal outgrows 64 KiB before any manifest is written.
  writePatches(arch, gridSpecs(Array.from({ length: 12 }, (_, i) => String(100 + i)), 100, 10).map((s) => ({ ...s, width: 2, height: 2 })));
  await assert.rejects(organize({ archive: arch, out: join(mnt, 'out') }), (e: Error & { hint?: string; code?: string }) => {
    assert.equal(e.name, 'IdcError', e.stack);
    assert.match(e.message, /Disk full while writing .*\.idc-organize\/journal\.jsonl/);
    assert.match(e.hint ?? '', /Free some space/);
    return true;
  });
}));

test('special and huge files: a FIFO, a link to /dev/zero and an 8 MiB sparse file are reported, not read', () => {
  const work = tempDir();
  const arch = join(work, 'arch');
  writePatches(arch, gridSpecs(['5'], 2, 1));
  const fifo = '5/0/5_idx5_x901_y1_class0.png';
  const zero = '5/0/5_idx5_x951_y1_class0.png';
  const huge = '5/1/5_idx5_x1001_y1_class1.png';
  execFileSync('mkfifo', [join(arch, fifo)]);
  symlinkSync('/dev/zero', join(arch, zero));
  writeFileSync(join(arch, huge), makePng());
  truncateSync(join(arch, huge), HUGE);
  const before = treeChecksum(arch);
  const r = idc(['organize', 'arch', '--out', 'out', '-q'], work, 30_000);
  assert.equal(r.signal, null, 'organize hung or was killed');
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(readFileSync(join(work, 'out', REPORT_FILE), 'utf8')) as OrganizeReport;
  assert.match(issueFor(report, fifo)?.reason ?? '', /not a regular file \(a FIFO\)/);
  assert.match(issueFor(report, zero)?.reason ?? '', /not a regular file \(a character device\)/);
  assert.match(issueFor(report, huge)?.reason ?? '', /too large for a patch \(8388608 bytes/);
  assert.equal(report.totals.patches, 2);
  assert.deepEqual(treeChecksum(arch), before);
});

test('the patch cache decoder refuses the same special and huge files without hanging', () => {
  const root = tempDir();
  mkdirSync(join(root, 'p'));
  writeFileSync(join(root, 'p', 'good.png'), makePng());
  execFileSync('mkfifo', [join(root, 'p', 'fifo.png')]);
  symlinkSync('/dev/zero', join(root, 'p', 'zero.png'));
  writeFileSync(join(root, 'p', 'huge.png'), makePng());
  truncateSync(join(root, 'p', 'huge.png'), HUGE);
  // In a child: before the fix the FIFO blocked the thread for good.
  const code = `
    const { decodeJob } = require(${JSON.stringify(resolve(__dirname, '../src/core/cache/decode-chunk.ts'))});
    const r = decodeJob({ root: ${JSON.stringify(root)}, sources: ['p/good.png', 'p/fifo.png', 'p/zero.png', 'p/huge.png'], sizes: [50, 50, 50, 50, 50, 50, 50, 50], edge: 'resize' });
    console.log(JSON.stringify({ count: r.count, failures: r.failures }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'decoder hung');
  assert.equal(r.status, 0, r.stderr);
  const { count, failures } = JSON.parse(r.stdout) as { count: number; failures: { i: number; reason: string }[] };
  assert.equal(count, 1);
  assert.deepEqual(failures.map((f) => f.i), [1, 2, 3]);
  assert.match(failures[0].reason, /not a regular file \(a FIFO\)/);
  assert.match(failures[1].reason, /not a regular file \(a character device\)/);
  assert.match(failures[2].reason, /too large for a patch \(8388608 bytes/);
});

test('non-numeric patient folders are named as such', async () => {
  const arch = tempDir();
  writePatches(arch, gridSpecs(['7'], 2, 1));
  const put = (rel: string) => { mkdirSync(join(arch, rel, '..'), { recursive: true }); writeFileSync(join(arch, rel), makePng()); };
  put('88 84/0/8884_idx5_x1_y1_class0.png');
  put('Ünï/1/9_idx5_x1_y1_class1.png');
  const r = await organize({ archive: arch, out: tempDir() });
  assert.match(issueFor(r.report, '88 84/')?.reason ?? '', /^patient folder name '88 84' is not a number$/);
  assert.match(issueFor(r.report, 'Ünï/')?.reason ?? '', /^patient folder name 'Ünï' is not a number$/);
  assert.match(issueFor(r.report, '88 84/0/8884_idx5_x1_y1_class0.png')?.reason ?? '', /patient folder name '88 84' is not a number/);
  assert.match(issueFor(r.report, 'Ünï/1/9_idx5_x1_y1_class1.png')?.reason ?? '', /patient folder name 'Ünï' is not a number/);
  const wrong = r.report.issues.filter((i) => /neither a 0\/ nor a 1\/|outside any/.test(i.reason));
  assert.deepEqual(wrong, []);
  assert.equal(r.report.totals.patches, 2);
});

test('organize pointed at one patient folder says so instead of calling 0/ a patient folder', async () => {
  const work = tempDir();
  writePatches(work, gridSpecs(['8913'], 2, 1));
  const r = await organize({ archive: join(work, '8913'), out: tempDir() });
  assert.match(issueFor(r.report, '0/')?.reason ?? '', /label folder at the top of the archive .*one patient's folder/);
  assert.deepEqual(r.report.issues.filter((i) => /neither a 0\/ nor a 1\//.test(i.reason)), []);
});

test('predict on one patient folder: no false layout complaint about its 0/, special and huge files skipped without hanging', async () => {
  const tf = await import('@tensorflow/tfjs-core');
  const tfl = await import('@tensorflow/tfjs-layers');
  const { initBackend } = await import('../src/core/engine/backends');
  const { saveModel } = await import('../src/core/train/model-io');
  await initBackend('cpu');
  const work = tempDir();
  const model = tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] });
  await saveModel(model, join(work, 'm'));
  tf.disposeVariables();
  const folder = join(work, '8913');
  writePatches(work, gridSpecs(['8913'], 4, 2));
  execFileSync('mkfifo', [join(folder, '0', '8913_idx5_x901_y1.png')]);
  symlinkSync('/dev/zero', join(folder, '0', '8913_idx5_x951_y1.png'));
  writeFileSync(join(folder, '1', '8913_idx5_x1001_y1.png'), makePng());
  truncateSync(join(folder, '1', '8913_idx5_x1001_y1.png'), HUGE);
  const r = idc(['predict', '8913', '--model', join(work, 'm', 'model.json'), '--backend', 'cpu', '--out', 'out', '-q'], work, 120_000);
  assert.equal(r.signal, null, 'predict hung or was killed');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Scored 4 patches \(3 skipped\)/);
  assert.doesNotMatch(r.out, /neither a 0\/ nor a 1\//);
  assert.match(r.out, /(skipped|warning:) 0\/8913_idx5_x901_y1\.png: not a regular file \(a FIFO\)/);
  assert.match(r.out, /(skipped|warning:) 0\/8913_idx5_x951_y1\.png: not a regular file \(a character device\)/);
  assert.match(r.out, /(skipped|warning:) 1\/8913_idx5_x1001_y1\.png: too large for a patch \(8388608 bytes/);
  assert.ok(!existsSync(join(folder, 'out')));
});
