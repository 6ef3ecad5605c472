import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, symlinkSync, existsSync, readFileSync, statSync, readdirSync, chmodSync, chownSync, appendFileSync, createWriteStream, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import yazl from 'yazl';
import { organize, MANIFEST_FILE, REPORT_FILE, type OrganizeReport } from '../src/core/organize/organize';
import { checkPng } from '../src/core/organize/png-check';
import { readManifest } from '../src/core/manifest';
import { tempDir, makePng, writePatches, gridSpecs, treeChecksum } from './helpers/fixtures';

const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');
const CLI = resolve(__dirname, '../dist/cli.js');

const issueFor = (r: OrganizeReport, path: string) => r.issues.find((i) => i.path === path);

test('real sample: counts match its README, edge patches flagged, archive untouched', { skip: !existsSync(SAMPLE) && 'shared sample not present' }, async () => {
  const before = treeChecksum(SAMPLE);
  const out = tempDir();
  const r = await organize({ archive: SAMPLE, out });
  const expected: Record<string, [number, number]> = {
    8913: [873, 0], 8917: [0, 397], 8918: [0, 120], 8950: [0, 190], 8951: [0, 180], 8955: [0, 181], 8956: [0, 340], 8957: [0, 83],
    8959: [0, 204], 8974: [0, 369], 8975: [52, 833], 8980: [0, 209], 8984: [0, 156], 9022: [0, 99], 9023: [0, 288], 9259: [4, 0],
  };
  assert.deepEqual(Object.fromEntries(r.report.patients.map((p) => [p.patient, [p.negatives, p.positives]])), expected);
  assert.equal(r.report.totals.patches, 4578);
  assert.equal(r.report.totals.negatives, 929);
  assert.equal(r.report.totals.positives, 3649);
  const edges = r.report.issues.filter((i) => i.reason.startsWith('edge patch')).map((i) => `${i.path.split('/').pop()} ${i.reason}`);
  assert.deepEqual(edges.sort(), ['8957_idx5_x2251_y701_class1.png edge patch 31x50', '8975_idx5_x3601_y1701_class0.png edge patch 32x50']);
  const rows = await readManifest(join(out, MANIFEST_FILE));
  assert.equal(rows.length, 4578);
  assert.deepEqual(rows.filter((x) => x.width < 50).map((x) => [x.width, x.height]).sort(), [[31, 50], [32, 50]]);
  assert.deepEqual(treeChecksum(SAMPLE), before);
});

test('checkPng: empty, non-PNG, truncated, corrupt and valid files', () => {
  const good = makePng(50, 50);
  assert.equal(checkPng(good).ok, true);
  const bad = (b: Uint8Array) => { const c = checkPng(b); assert.equal(c.ok, false); return (c as { reason: string }).reason; };
  assert.match(bad(new Uint8Array(0)), /empty file/);
  assert.match(bad(Buffer.from('GIF89a not a png')), /not a PNG/);
  assert.match(bad(good.subarray(0, good.length - 20)), /truncated/);
  assert.match(bad(good.subarray(0, 20)), /truncated/);
  const flipped = Buffer.from(good);
  flipped[60] ^= 0xff;
  assert.match(bad(flipped), /CRC mismatch/);
  assert.match(bad(makePng(60, 50)), /unexpected size 60x50/);
  const edge = checkPng(makePng(31, 50));
  assert.ok(edge.ok && edge.info.width === 31 && /edge patch 31x50/.test(edge.info.warning ?? ''));
});

test('bad input: every problem file is reported with its reason, good patches kept, nothing modified', async () => {
  const root = tempDir();
  writePatches(root, gridSpecs(['101', '102'], 4, 1));
  const put = (rel: string, data: Uint8Array | string) => { mkdirSync(join(root, rel, '..'), { recursive: true }); writeFileSync(join(root, rel), data); };
  const good = makePng();
  put('101/0/101_idx5_x901_y1_class0.png', new Uint8Array(0));
  put('101/0/101_idx5_x951_y1_class0.png', good.subarray(0, good.length - 30));
  const corrupt = Buffer.from(good); corrupt[70] ^= 0x55;
  put('101/0/101_idx5_x1001_y1_class0.png', corrupt);
  put('101/0/101_idx5_x1051_y1_class0.png', Buffer.from('\xff\xd8\xff\xe0 JFIF jpeg bytes'));
  put('101/0/notes.txt', 'hello');
  put('101/0/101_x5_y9.png', good);
  put('101/0/101_idx5_x1101_y1_class1.png', good);
  put('101/1/999_idx5_x1151_y1_class1.png', good);
  put('README.md', '# readme');
  mkdirSync(join(root, '103', 'misc'), { recursive: true });
  put('103/misc/a.txt', 'x');
  symlinkSync('..', join(root, '102', '0', 'loop'));
  symlinkSync('loop-b', join(root, '102', 'loop-a'));
  symlinkSync('loop-a', join(root, '102', 'loop-b'));
  symlinkSync('/nonexistent/target.png', join(root, '102', '1', 'broken.png'));
  const before = treeChecksum(root);
  const out = tempDir();
  const r = await organize({ archive: root, out });
  const expect = (path: string, re: RegExp) => {
    const i = issueFor(r.report, path);
    assert.ok(i, `no issue reported for ${path}; got ${JSON.stringify(r.report.issues, null, 1)}`);
    assert.match(i.reason, re, path);
  };
  expect('101/0/101_idx5_x901_y1_class0.png', /empty file \(0 bytes\)/);
  expect('101/0/101_idx5_x951_y1_class0.png', /truncated/);
  expect('101/0/101_idx5_x1001_y1_class0.png', /CRC mismatch/);
  expect('101/0/101_idx5_x1051_y1_class0.png', /not a PNG file \(wrong signature\)/);
  expect('101/0/notes.txt', /not a PNG file/);
  expect('101/0/101_x5_y9.png', /does not match/);
  expect('101/0/101_idx5_x1101_y1_class1.png', /label folder 0\/ disagrees with the name's class1/);
  expect('101/1/999_idx5_x1151_y1_class1.png', /patient id in the name \(999\) differs from its folder \(101\)/);
  expect('README.md', /outside/);
  expect('103/', /neither a 0\/ nor a 1\//);
  expect('102/0/loop', /symbolic link loop/);
  expect('102/loop-a', /symbolic link loop/);
  expect('102/1/broken.png', /broken symbolic link/);
  assert.ok(r.report.issues.every((i) => i.severity === 'skipped' || i.severity === 'suspicious'));
  assert.equal(r.report.totals.patches, 8, 'the 8 good patches survive');
  assert.deepEqual(r.report.patients.map((p) => [p.patient, p.negatives, p.positives]), [['101', 3, 1], ['102', 3, 1]]);
  assert.deepEqual(treeChecksum(root), before);
});

test('unreadable files and folders are reported, not fatal', async () => {
  const root = tempDir();
  writePatches(root, gridSpecs(['201', '202'], 3, 1));
  const lockedFile = '201/0/201_idx5_x101_y1_class0.png';
  chmodSync(join(root, lockedFile), 0o000);
  chmodSync(join(root, '202', '0'), 0o000);
  const out = tempDir();
  let report: OrganizeReport;
  if (process.getuid?.() === 0) {
    // root reads anything: run the CLI as "nobody" so permissions apply, from a copy of the bundle
    // that nobody can read wherever the checkout lives.
    const bin = tempDir();
    for (const f of ['cli.js', 'check.worker.js']) copyFileSync(join(CLI, '..', f), join(bin, f));
    for (const d of [root, out, bin]) chmodSync(d, 0o755);
    chownSync(out, 65534, 65534);
    const res = spawnSync(process.execPath, [join(bin, 'cli.js'), 'organize', root, '--out', out, '-q'], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: out });
    assert.equal(res.status, 0, res.stderr);
    report = JSON.parse(readFileSync(join(out, REPORT_FILE), 'utf8'));
  } else {
    report = (await organize({ archive: root, out })).report;
  }
  assert.match(issueFor(report, lockedFile)?.reason ?? '', /unreadable: permission denied/);
  assert.match(issueFor(report, '202/0/')?.reason ?? '', /folder unreadable: permission denied/);
  assert.equal(report.totals.patches, 2 + 1);
});

test('missing archive, output inside the archive, and a non-archive file give actionable errors', async () => {
  const root = tempDir();
  await assert.rejects(organize({ archive: join(root, 'nope'), out: tempDir() }), (e: Error & { hint?: string }) => /Archive not found: .*nope/.test(e.message) && /paths\.archive/.test(e.hint ?? ''));
  writePatches(root, gridSpecs(['1'], 2, 1));
  await assert.rejects(organize({ archive: root, out: join(root, 'out') }), /inside the archive/);
  writeFileSync(join(root, 'x.tar'), 'x');
  await assert.rejects(organize({ archive: join(root, 'x.tar'), out: tempDir() }), /neither a folder nor a \.zip/);
  writeFileSync(join(root, 'bad.zip'), 'not a zip at all');
  await assert.rejects(organize({ archive: join(root, 'bad.zip'), out: tempDir() }), /not a readable zip/);
  assert.ok(!existsSync(join(root, 'out')), 'nothing written into the archive');
});

test('idempotent: a second run does nothing; a changed archive is rescanned', async () => {
  const root = tempDir();
  writePatches(root, gridSpecs(['301', '302'], 4, 2));
  const out = tempDir();
  const first = await organize({ archive: root, out });
  assert.equal(first.upToDate, false);
  const mtime = statSync(join(out, MANIFEST_FILE)).mtimeMs;
  const second = await organize({ archive: root, out });
  assert.equal(second.upToDate, true);
  assert.equal(statSync(join(out, MANIFEST_FILE)).mtimeMs, mtime, 'manifest not rewritten');
  writePatches(root, [{ patient: '303', x: 1, y: 1, label: 1 }]);
  const third = await organize({ archive: root, out });
  assert.equal(third.upToDate, false);
  assert.equal(third.report.totals.patches, 9);
});

test('resumable: an interrupted run continues from its journal and ends identical to a clean run', async () => {
  const root = tempDir();
  writePatches(root, gridSpecs(['401', '402', '403', '404', '405'], 5, 2));
  const clean = tempDir();
  await organize({ archive: root, out: clean });
  const out = tempDir();
  let seen = 0;
  await assert.rejects(organize({ archive: root, out, afterUnit: () => { if (++seen === 3) throw new Error('simulated crash'); } }), /simulated crash/);
  assert.ok(!existsSync(join(out, MANIFEST_FILE)), 'no manifest from a crashed run');
  // A crash mid-append leaves a torn line; it must be ignored.
  appendFileSync(join(out, '.idc-organize', 'journal.jsonl'), '{"unit":"405","sig":"x","c":[[');
  const r = await organize({ archive: root, out });
  assert.equal(r.resumedPatients, 3);
  assert.equal(readFileSync(join(out, MANIFEST_FILE), 'utf8'), readFileSync(join(clean, MANIFEST_FILE), 'utf8'));
  assert.ok(!existsSync(join(out, '.idc-organize')), 'journal removed after success');
});

test('cancel leaves a resumable journal', async () => {
  const root = tempDir();
  writePatches(root, gridSpecs(['501', '502', '503'], 3, 1));
  const out = tempDir();
  const ac = new AbortController();
  await assert.rejects(organize({ archive: root, out, signal: ac.signal, afterUnit: () => ac.abort() }), /Cancelled/);
  const r = await organize({ archive: root, out });
  assert.equal(r.resumedPatients, 1);
  assert.equal(r.report.totals.patches, 9);
});

test('duplicate tree: identical copies are de-duplicated, conflicting ones reported', async () => {
  const root = tempDir();
  const rels = writePatches(root, gridSpecs(['601', '602'], 3, 1));
  const dup = join(root, 'IDC_regular_ps50_idx5');
  for (const rel of rels) { mkdirSync(join(dup, rel, '..'), { recursive: true }); writeFileSync(join(dup, rel), readFileSync(join(root, rel))); }
  writeFileSync(join(dup, rels[0]), makePng(50, 50, 999));
  const r = await organize({ archive: root, out: tempDir() });
  assert.equal(r.report.totals.patches, 6);
  assert.equal(r.report.totals.duplicates, 5);
  assert.deepEqual(r.report.duplicates, [{ tree: 'IDC_regular_ps50_idx5', files: 5 }]);
  assert.match(issueFor(r.report, `IDC_regular_ps50_idx5/${rels[0]}`)?.reason ?? '', /conflicting copy of 601\/.*different content/);
  const rows = await readManifest(join(r.manifestFile));
  assert.ok(rows.every((x) => !x.source.startsWith('IDC_regular')), 'the top-level copy is the one kept');
});

/** Writes a zip; names given as [safeName, realName] are patched in afterwards (yazl refuses unsafe names). */
async function writeZip(file: string, entries: [string, Buffer][], unsafe: [string, string][] = []): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of entries) zip.addBuffer(data, name);
  for (const [safe] of unsafe) zip.addBuffer(makePng(), safe);
  zip.end();
  await new Promise<void>((res, rej) => zip.outputStream.pipe(createWriteStream(file)).on('close', res).on('error', rej));
  if (unsafe.length) {
    let buf = readFileSync(file);
    for (const [safe, real] of unsafe) {
      assert.equal(safe.length, real.length);
      buf = Buffer.from(buf.toString('latin1').split(safe).join(real), 'latin1');
    }
    writeFileSync(file, buf);
  }
}

test('zip: both trees de-duplicated, unsafe entry names refused and never written, zip untouched', async () => {
  const root = tempDir();
  const rels = writePatches(root, gridSpecs(['701', '702'], 3, 1));
  const entries: [string, Buffer][] = [];
  for (const rel of rels) {
    const data = readFileSync(join(root, rel));
    entries.push([`IDC_regular_ps50_idx5/${rel}`, data], [rel, data]);
  }
  const zipFile = join(tempDir(), 'archive.zip');
  await writeZip(zipFile, entries, [['xx/701/0/701_idx5_x9_y9_class0.png', '../701/0/701_idx5_x9_y9_class0.png'], ['Xtmp/evil.png', '/tmp/evil.png']]);
  const before = treeChecksum(zipFile);
  const work = tempDir();
  const out = join(work, 'out');
  const r = await organize({ archive: zipFile, out, materialize: 'copy' });
  assert.equal(r.report.kind, 'zip');
  assert.equal(r.report.totals.patches, 6);
  assert.equal(r.report.totals.duplicates, 6);
  assert.match(issueFor(r.report, '../701/0/701_idx5_x9_y9_class0.png')?.reason ?? '', /unsafe entry name \(contains \.\.\)/);
  assert.match(issueFor(r.report, '/tmp/evil.png')?.reason ?? '', /unsafe entry name \(absolute path\)/);
  assert.ok(!existsSync('/tmp/evil.png') && !existsSync(join(work, '701')), 'nothing written outside the output folder');
  assert.equal(readdirSync(join(out, '0')).length + readdirSync(join(out, '1')).length, 6);
  assert.deepEqual(readFileSync(join(out, '1', '701_idx5_x1_y1_class1.png')), readFileSync(join(root, '701/1/701_idx5_x1_y1_class1.png')));
  assert.deepEqual(treeChecksum(zipFile), before);
  assert.equal((await organize({ archive: zipFile, out })).upToDate, true);
});

test('materialize link and copy: the notebook layout, idempotent, raw archive intact', async () => {
  const root = tempDir();
  const rels = writePatches(root, gridSpecs(['801', '802'], 4, 1));
  const before = treeChecksum(root);
  for (const mode of ['link', 'copy'] as const) {
    const out = tempDir();
    const r = await organize({ archive: root, out, materialize: mode });
    assert.deepEqual(r.materialized, { created: 8, existing: 0, mode });
    const dst = join(out, '1', rels[0].split('/').pop()!);
    const same = statSync(dst).ino === statSync(join(root, rels[0])).ino;
    assert.equal(same, mode === 'link', `${mode}: hard link iff link mode`);
    assert.deepEqual(readFileSync(dst), readFileSync(join(root, rels[0])));
    const again = await organize({ archive: root, out, materialize: mode });
    assert.deepEqual(again.materialized, { created: 0, existing: 8, mode });
  }
  assert.deepEqual(treeChecksum(root), before);
});
