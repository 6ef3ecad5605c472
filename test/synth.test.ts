import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { decode } from 'fast-png';
import yauzl from 'yauzl';
import { build } from 'esbuild';
import { generateSyntheticArchive, planSyntheticArchive, SYNTH_MARKER, type SynthSummary } from '../src/core/synth/synth';
import { ZipWriter } from '../src/core/synth/zip';
import { parsePatchName, DUPLICATE_TREE_DIR } from '../src/core/naming';
import { isIdcError } from '../src/core/errors';

// Three patients, ~2,700 patches, all with both classes and some edge patches: quick but not vacuous.
const PATIENTS = 3;
const SEED = 99;
let tmp: string;
let dirA: string;
let summaryA: SynthSummary;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'idc-synth-test-'));
  dirA = join(tmp, 'a');
  summaryA = await generateSyntheticArchive({ out: dirA, patients: PATIENTS, seed: SEED, duplicateTree: true });
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Relative path → sha256 of every file under root (the marker excluded). */
function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.name !== SYNTH_MARKER) out.set(relative(root, p).split('\\').join('/'), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

function patchFiles(root: string): { rel: string; pid: string; label: string; file: string }[] {
  const out: { rel: string; pid: string; label: string; file: string }[] = [];
  for (const pid of readdirSync(root)) {
    if (pid === SYNTH_MARKER || pid === DUPLICATE_TREE_DIR) continue;
    for (const label of readdirSync(join(root, pid))) {
      for (const file of readdirSync(join(root, pid, label))) out.push({ rel: `${pid}/${label}/${file}`, pid, label, file });
    }
  }
  return out;
}

/** Mean RGB and luminance of a decoded patch. */
function stats(png: Buffer): { r: number; g: number; b: number; lum: number; dark: number } {
  const img = decode(png);
  const d = img.data;
  let r = 0, g = 0, b = 0, dark = 0;
  for (let i = 0; i < d.length; i += 3) {
    r += d[i];
    g += d[i + 1];
    b += d[i + 2];
    if (0.3 * d[i] + 0.59 * d[i + 1] + 0.11 * d[i + 2] < 130) dark++;
  }
  const n = d.length / 3;
  return { r: r / n, g: g / n, b: b / n, lum: (0.3 * r + 0.59 * g + 0.11 * b) / n, dark: dark / n };
}

test('same seed and patients give byte-identical trees', async () => {
  const dirB = join(tmp, 'b');
  // Without the duplicate tree this time: the main tree must not depend on that option either.
  const b = await generateSyntheticArchive({ out: dirB, patients: PATIENTS, seed: SEED });
  assert.deepEqual({ ...b, out: '', files: 0, bytes: 0 }, { ...summaryA, out: '', files: 0, bytes: 0 });
  assert.equal(b.files, summaryA.files / 2);
  const ha = hashTree(dirA), hb = hashTree(dirB);
  assert.equal(ha.size, summaryA.files);
  assert.equal(hb.size, b.files);
  for (const [rel, h] of hb) assert.equal(ha.get(rel), h, rel);
  rmSync(dirB, { recursive: true });
});

test('a different seed gives a different archive', () => {
  const p1 = planSyntheticArchive(PATIENTS, SEED), p2 = planSyntheticArchive(PATIENTS, SEED + 1);
  assert.notDeepEqual(p1.perPatient, p2.perPatient);
});

test('layout and names follow the Kaggle archive', () => {
  const files = patchFiles(dirA);
  assert.equal(files.length, summaryA.patches);
  const pids = new Set(files.map((f) => f.pid));
  assert.equal(pids.size, PATIENTS);
  assert.deepEqual([...pids].sort(), summaryA.perPatient.map((p) => p.patient).sort());
  for (const pid of pids) assert.match(pid, /^\d{4,5}$/);
  let positives = 0;
  for (const f of files) {
    const n = parsePatchName(f.file);
    assert.ok(n, f.rel);
    assert.equal(n.patient, f.pid);
    assert.equal(String(n.label), f.label);
    assert.equal((n.x - 1) % 50, 0, f.rel);
    assert.equal((n.y - 1) % 50, 0, f.rel);
    positives += n.label;
  }
  assert.equal(positives, summaryA.positives);
  for (const p of summaryA.perPatient) {
    assert.equal(readdirSync(join(dirA, p.patient, '0')).length, p.negatives);
    assert.equal(readdirSync(join(dirA, p.patient, '1')).length, p.positives);
  }
});

test('PNGs are 8-bit RGB, 50x50 except a few edge patches on the right/bottom border', () => {
  const files = patchFiles(dirA);
  const maxXY = new Map<string, { x: number; y: number }>();
  for (const f of files) {
    const n = parsePatchName(f.file)!;
    const m = maxXY.get(f.pid) ?? { x: 0, y: 0 };
    maxXY.set(f.pid, { x: Math.max(m.x, n.x), y: Math.max(m.y, n.y) });
  }
  let edge = 0;
  for (const f of files) {
    const img = decode(readFileSync(join(dirA, f.rel)));
    assert.equal(img.channels, 3, f.rel);
    assert.equal(img.depth, 8, f.rel);
    assert.ok(img.width >= 1 && img.width <= 50 && img.height >= 1 && img.height <= 50, f.rel);
    if (img.width < 50 || img.height < 50) {
      edge++;
      const n = parsePatchName(f.file)!;
      const m = maxXY.get(f.pid)!;
      if (img.width < 50) assert.equal(n.x, m.x, `${f.rel} is narrow but not in the last column`);
      if (img.height < 50) assert.equal(n.y, m.y, `${f.rel} is short but not in the last row`);
    }
  }
  assert.ok(edge > 0, 'the sample has edge patches');
  assert.equal(edge, summaryA.edgePatches);
});

test('planning at full scale matches the real archive’s statistics', () => {
  const full = planSyntheticArchive(279, 42);
  assert.ok(Math.abs(full.patches - 277_524) / 277_524 < 0.03, `total ${full.patches}`);
  const frac = full.positives / full.patches;
  assert.ok(frac > 0.24 && frac < 0.33, `positive fraction ${frac}`);
  const edge = full.edgePatches / full.patches;
  assert.ok(edge >= 0.002 && edge <= 0.01, `edge fraction ${edge}`);
  const sizes = full.perPatient.map((p) => p.negatives + p.positives).sort((a, b) => a - b);
  assert.ok(sizes[0] >= 50 && sizes[0] < 200, `smallest ${sizes[0]}`);
  assert.ok(sizes[sizes.length - 1] > 2000, `largest ${sizes[sizes.length - 1]}`);
  assert.equal(new Set(full.perPatient.map((p) => p.patient)).size, 279);
  // Some patients have (almost) no tumour, some a lot.
  const fr = full.perPatient.map((p) => p.positives / (p.negatives + p.positives));
  assert.ok(fr.filter((f) => f < 0.03).length >= 10);
  assert.ok(fr.filter((f) => f > 0.6).length >= 10);
});

test('positive fraction on 40 patients is in a sensible range', () => {
  const plan = planSyntheticArchive(40, 7);
  const frac = plan.positives / plan.patches;
  assert.ok(frac > 0.2 && frac < 0.4, `positive fraction ${frac}`);
  assert.ok(plan.patches > 30_000 && plan.patches < 50_000, `patches ${plan.patches}`);
});

test('stain colours shift per patient; positives are darker than negatives', () => {
  const perPatient = new Map<string, { neg: ReturnType<typeof stats>[]; pos: ReturnType<typeof stats>[] }>();
  for (const f of patchFiles(dirA)) {
    const s = stats(readFileSync(join(dirA, f.rel)));
    const e = perPatient.get(f.pid) ?? { neg: [], pos: [] };
    (f.label === '1' ? e.pos : e.neg).push(s);
    perPatient.set(f.pid, e);
  }
  // Patient identity from mean colour alone (nearest centroid) is far above chance: a leaky split would profit.
  const all = [...perPatient.entries()].flatMap(([pid, e]) => [...e.neg, ...e.pos].map((s) => ({ pid, s })));
  const centroids = [...perPatient.entries()].map(([pid, e]) => {
    const xs = [...e.neg, ...e.pos];
    return { pid, r: mean(xs.map((s) => s.r)), g: mean(xs.map((s) => s.g)), b: mean(xs.map((s) => s.b)) };
  });
  let hit = 0;
  for (const { pid, s } of all) {
    let best = '', bd = Infinity;
    for (const c of centroids) {
      const d = (s.r - c.r) ** 2 + (s.g - c.g) ** 2 + (s.b - c.b) ** 2;
      if (d < bd) { bd = d; best = c.pid; }
    }
    if (best === pid) hit++;
  }
  assert.ok(hit / all.length > 1.6 / PATIENTS, `patient-from-colour accuracy ${hit / all.length}`);

  let darker = 0, both = 0;
  const pos: number[] = [], neg: number[] = [];
  for (const e of perPatient.values()) {
    pos.push(...e.pos.map((s) => s.dark));
    neg.push(...e.neg.map((s) => s.dark));
    if (e.pos.length < 10 || e.neg.length < 10) continue;
    both++;
    if (mean(e.pos.map((s) => s.lum)) < mean(e.neg.map((s) => s.lum))) darker++;
  }
  assert.ok(both >= 2);
  assert.equal(darker, both, 'every patient with both classes has darker positives');
  assert.ok(mean(pos) > 1.5 * mean(neg), `dark-pixel share: positives ${mean(pos)}, negatives ${mean(neg)}`);
});

test('the duplicate tree holds byte-identical files', () => {
  const main = patchFiles(dirA);
  const dup = patchFiles(join(dirA, DUPLICATE_TREE_DIR));
  assert.equal(dup.length, main.length);
  assert.equal(summaryA.files, 2 * summaryA.patches);
  for (const f of main) assert.ok(readFileSync(join(dirA, f.rel)).equals(readFileSync(join(dirA, DUPLICATE_TREE_DIR, f.rel))), f.rel);
});

test('zip holds both trees with the folder version’s bytes, and is deterministic', async () => {
  const zipPath = join(tmp, 'archive.zip');
  const s = await generateSyntheticArchive({ out: zipPath, patients: PATIENTS, seed: SEED, zip: true });
  assert.equal(s.patches, summaryA.patches);
  assert.equal(s.files, 2 * s.patches);
  assert.equal(s.bytes, statSync(zipPath).size);
  const entries = await readZip(zipPath);
  assert.equal(entries.size, 2 * summaryA.patches);
  for (const f of patchFiles(dirA)) {
    const want = readFileSync(join(dirA, f.rel));
    assert.ok(entries.get(f.rel)?.equals(want), f.rel);
    assert.ok(entries.get(`${DUPLICATE_TREE_DIR}/${f.rel}`)?.equals(want), `${DUPLICATE_TREE_DIR}/${f.rel}`);
  }
  assert.deepEqual(readdirSync(tmp).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  // Same options again: recognised and kept.
  const mtime = statSync(zipPath).mtimeMs;
  const again = await generateSyntheticArchive({ out: zipPath, patients: PATIENTS, seed: SEED, zip: true });
  assert.equal(statSync(zipPath).mtimeMs, mtime);
  assert.equal(again.bytes, s.bytes);
  // Two fresh zips (one patient, to stay quick) are byte-identical.
  const z1 = join(tmp, 'one-1.zip'), z2 = join(tmp, 'one-2.zip');
  await generateSyntheticArchive({ out: z1, patients: 1, seed: SEED, zip: true });
  await generateSyntheticArchive({ out: z2, patients: 1, seed: SEED, zip: true });
  assert.ok(readFileSync(z1).equals(readFileSync(z2)));
  rmSync(z1);
  rmSync(z2);
});

test('zip writer: Zip64 records read back with yauzl', async () => {
  const p = join(tmp, 'z64.zip');
  const fh = await fsp.open(p, 'w');
  const w = new ZipWriter(fh, 0, 33, true);
  const data = [Buffer.from('hello'), Buffer.alloc(70_000, 7), Buffer.from('')];
  for (let i = 0; i < data.length; i++) await w.add(`d/${i}.bin`, data[i], crc32(data[i]));
  await w.finish('idc-synth test');
  await fh.close();
  const entries = await readZip(p);
  assert.equal(entries.size, 3);
  for (let i = 0; i < data.length; i++) assert.ok(entries.get(`d/${i}.bin`)?.equals(data[i]));
});

test('cancellation stops early and leaves the folder marked incomplete', async () => {
  const dir = join(tmp, 'cancel');
  const ac = new AbortController();
  const total = planSyntheticArchive(2, SEED).patches;
  let events = 0;
  await assert.rejects(
    generateSyntheticArchive({
      out: dir, patients: 2, seed: SEED, signal: ac.signal,
      onProgress: (e) => {
        events++;
        assert.equal(e.phase, 'synth');
        assert.equal(e.unit, 'patches');
        assert.equal(e.total, total);
        if (e.done > 0) ac.abort();
      },
    }),
    (e: unknown) => isIdcError(e) && e.code === 'CANCELLED',
  );
  assert.ok(events >= 1);
  const written = patchFiles(dir).length;
  assert.ok(written < total / 2, `${written} of ${total} files written after cancel`);
  assert.equal(JSON.parse(readFileSync(join(dir, SYNTH_MARKER), 'utf8')).complete, false);
  // Resuming with the same options completes it, with progress reaching the total.
  let last = 0;
  const s = await generateSyntheticArchive({ out: dir, patients: 2, seed: SEED, onProgress: (e) => { last = e.done; } });
  assert.equal(last, total);
  assert.equal(patchFiles(dir).length, s.patches);
  rmSync(dir, { recursive: true });
});

test('an already aborted signal writes nothing', async () => {
  const dir = join(tmp, 'aborted');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(generateSyntheticArchive({ out: dir, patients: 2, seed: 1, signal: ac.signal }), (e: unknown) => isIdcError(e) && e.code === 'CANCELLED');
  assert.equal(existsSync(dir), false);
});

test('refuses a foreign non-empty folder, other options, and a foreign file', async () => {
  const foreign = join(tmp, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  await assert.rejects(generateSyntheticArchive({ out: foreign, patients: 2, seed: 1 }), (e: unknown) => isIdcError(e) && e.code === 'SYNTH_OUT_NOT_EMPTY');
  assert.deepEqual(readdirSync(foreign), ['notes.txt']);

  await assert.rejects(generateSyntheticArchive({ out: dirA, patients: PATIENTS, seed: SEED + 1, duplicateTree: true }), (e: unknown) => isIdcError(e) && e.code === 'SYNTH_OUT_NOT_EMPTY');
  await assert.rejects(generateSyntheticArchive({ out: dirA, patients: PATIENTS, seed: SEED }), (e: unknown) => isIdcError(e) && e.code === 'SYNTH_OUT_NOT_EMPTY');

  const file = join(tmp, 'other.zip');
  writeFileSync(file, 'not a zip');
  await assert.rejects(generateSyntheticArchive({ out: file, patients: 2, seed: 1, zip: true }), (e: unknown) => isIdcError(e) && e.code === 'SYNTH_OUT_EXISTS');
  assert.equal(readFileSync(file, 'utf8'), 'not a zip');

  await assert.rejects(generateSyntheticArchive({ out: join(tmp, 'x'), patients: 0, seed: 1 }), (e: unknown) => isIdcError(e) && e.code === 'BAD_OPTION');
});

test('same options on a complete folder are recognised and skipped', async () => {
  const t0 = Date.now();
  const s = await generateSyntheticArchive({ out: dirA, patients: PATIENTS, seed: SEED, duplicateTree: true });
  assert.deepEqual(s, summaryA);
  assert.ok(Date.now() - t0 < 2000);
});

test('worker threads (bundled build) produce the same bytes as in-thread generation', async () => {
  const dist = join(tmp, 'dist');
  const synth = resolve(__dirname, '../src/core/synth/synth.ts');
  await build({
    stdin: {
      contents: `const { generateSyntheticArchive } = require(${JSON.stringify(synth)});
        generateSyntheticArchive({ out: process.argv[2], patients: Number(process.argv[3]), seed: Number(process.argv[4]), threads: 2 })
          .then((s) => process.stdout.write(JSON.stringify(s)), (e) => { console.error(e); process.exit(1); });`,
      resolveDir: __dirname, loader: 'ts', sourcefile: 'run-synth.ts',
    },
    outfile: join(dist, 'run-synth.js'), bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error',
  });
  await build({
    entryPoints: [resolve(__dirname, '../src/core/synth/synth.worker.ts')],
    outfile: join(dist, 'synth.worker.js'), bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error',
  });
  const dirW = join(tmp, 'w');
  const s = JSON.parse(execFileSync(process.execPath, [join(dist, 'run-synth.js'), dirW, String(PATIENTS), String(SEED)], { encoding: 'utf8' })) as SynthSummary;
  assert.deepEqual({ ...s, out: '', files: 0, bytes: 0 }, { ...summaryA, out: '', files: 0, bytes: 0 });
  const ha = hashTree(dirA), hw = hashTree(dirW);
  assert.equal(hw.size, summaryA.patches);
  for (const [rel, h] of hw) assert.equal(ha.get(rel), h, rel);
  rmSync(dirW, { recursive: true });
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

function readZip(file: string): Promise<Map<string, Buffer>> {
  return new Promise((res, rej) => {
    yauzl.open(file, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return rej(err);
      const out = new Map<string, Buffer>();
      zf.on('error', rej);
      zf.on('end', () => res(out));
      zf.on('entry', (entry: yauzl.Entry) => {
        zf.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return rej(e2);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(chunks));
            zf.readEntry();
          });
        });
      });
      zf.readEntry();
    });
  });
}
