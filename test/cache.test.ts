import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, existsSync, rmSync, readdirSync, createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { deflateSync, crc32 } from 'node:zlib';
import { encode, decode } from 'fast-png';
import { buildSync } from 'esbuild';
import yazl from 'yazl';
import { organize, MANIFEST_FILE, MANIFEST_META_FILE, type ManifestMeta } from '../src/core/organize/organize';
import { readManifest, type ManifestRow } from '../src/core/manifest';
import { splitByPatient, assignRows, type SplitFile, SPLIT_NAMES } from '../src/core/split';
import { patchFileName, type Label } from '../src/core/naming';
import { Rng } from '../src/core/rng';
import { buildCache, openCache, epochOrder, PATCH_BYTES, CACHE_FILE, type CacheInfo, type EdgeMode } from '../src/core/cache';
import { decodeRgb, toRgb8 } from '../src/core/cache/pixels';
import { readZipDirectory } from '../src/core/cache/zip-directory';
import { listZipWithYauzl } from '../src/core/organize/listing';
import { tempDir as makeTempDir, writePatches, gridSpecs } from './helpers/fixtures';

// The caches are megabytes each: remove what these tests made.
const made: string[] = [];
const tempDir = (prefix: string): string => { const d = makeTempDir(prefix); made.push(d); return d; };
after(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');

/** RGB pixels that name their own position: R = x, G = y, B = 200 + seed. */
function positionPixels(w: number, h: number, seed: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d.set([x, y, 200 + seed], (y * w + x) * 3);
  return d;
}

function writePng(root: string, patient: string, x: number, y: number, label: Label, png: Uint8Array): string {
  const rel = `${patient}/${label}/${patchFileName(patient, x, y, label)}`;
  mkdirSync(join(root, patient, String(label)), { recursive: true });
  writeFileSync(join(root, rel), png);
  return rel;
}

interface Fixture {
  archive: string;
  out: string;
  rows: ManifestRow[];
  meta: ManifestMeta;
  split: SplitFile;
}

/** 8 patients x 5 patches, plus a 31x50 and a 50x32 edge patch with position-coded pixels. */
async function fixture(): Promise<Fixture> {
  const archive = tempDir('idc-cache-archive-');
  writePatches(archive, gridSpecs(['101', '102', '103', '104', '105', '106', '107', '108'], 5, 2));
  writePng(archive, '101', 2001, 1, 1, encode({ width: 31, height: 50, data: positionPixels(31, 50, 1), channels: 3, depth: 8 }));
  writePng(archive, '102', 1, 2001, 0, encode({ width: 50, height: 32, data: positionPixels(50, 32, 2), channels: 3, depth: 8 }));
  const out = tempDir('idc-cache-out-');
  await organize({ archive, out });
  return loadFixture(archive, out, 1);
}

async function loadFixture(archive: string, out: string, seed: number): Promise<Fixture> {
  const rows = await readManifest(join(out, MANIFEST_FILE));
  const meta = JSON.parse(readFileSync(join(out, MANIFEST_META_FILE), 'utf8')) as ManifestMeta;
  const split = splitByPatient(rows, { ratios: [0.5, 0.25, 0.25], seed, stratify: false, manifestHash: meta.manifestHash });
  return { archive, out, rows, meta, split };
}

function build(f: Fixture, edgePatches: EdgeMode = 'resize', extra: Partial<Parameters<typeof buildCache>[0]> = {}): Promise<CacheInfo> {
  return buildCache({
    outputDir: f.out, split: f.split, rows: f.rows, manifestHash: f.meta.manifestHash,
    archive: f.meta.archive, archiveKind: f.meta.kind, edgePatches, ...extra,
  });
}

/** What a patch should look like in the cache when it is a full 50x50 RGB8 file. */
function filePixels(f: Fixture, row: ManifestRow): Uint8Array {
  return decode(readFileSync(join(f.archive, row.source))).data as Uint8Array;
}

function patchOf(f: Fixture, id: string) {
  for (const s of SPLIT_NAMES) {
    const r = openCache(join(f.out, 'cache'), s);
    const i = r.ids.indexOf(id);
    if (i >= 0) { const px = r.readBatch([i]); const label = r.labels[i]; r.close(); return { split: s, px, label }; }
    r.close();
  }
  return undefined;
}

const at = (px: Uint8Array, x: number, y: number) => Array.from(px.subarray((y * 50 + x) * 3, (y * 50 + x) * 3 + 3));

test('build: pixels round-trip, labels and ids follow the manifest, edge patches resized nearest-neighbour', async () => {
  const f = await fixture();
  const info = await build(f);
  assert.equal(info.upToDate, false);
  assert.deepEqual(info.built, ['train', 'val', 'test']);
  assert.deepEqual(info.failed, []);
  assert.equal(info.counts.train + info.counts.val + info.counts.test, f.rows.length);
  const cacheDir = join(f.out, 'cache');
  assert.ok(existsSync(join(cacheDir, CACHE_FILE)));
  const bySplit = assignRows(f.rows, f.split);
  for (const s of SPLIT_NAMES) {
    const r = openCache(cacheDir, s);
    const rows = bySplit[s];
    assert.equal(r.size, rows.length);
    assert.deepEqual([...r.ids], rows.map((x) => x.id));
    assert.deepEqual([...r.labels], rows.map((x) => x.label));
    assert.equal(r.positives, rows.filter((x) => x.label === 1).length);
    rows.forEach((row, i) => {
      if (row.width === 50 && row.height === 50) assert.deepEqual(r.readBatch([i]), filePixels(f, row), row.id);
    });
    r.close();
  }
  // 31 wide: source column floor(x * 31 / 50); rows unchanged.
  const wide = patchOf(f, '101_idx5_x2001_y1_class1')!;
  assert.equal(wide.label, 1);
  for (const [x, sx] of [[0, 0], [1, 0], [2, 1], [25, 15], [48, 29], [49, 30]]) assert.deepEqual(at(wide.px, x, 7), [sx, 7, 201], `x=${x}`);
  assert.deepEqual(at(wide.px, 49, 49), [30, 49, 201]);
  // 32 high: source row floor(y * 32 / 50).
  const tall = patchOf(f, '102_idx5_x1_y2001_class0')!;
  for (const [y, sy] of [[0, 0], [1, 0], [2, 1], [3, 1], [4, 2], [48, 30], [49, 31]]) assert.deepEqual(at(tall.px, 9, y), [9, sy, 202], `y=${y}`);
});

test('edge patches: pad puts them top-left on white, skip leaves them out and lists them', async () => {
  const f = await fixture();
  const padded = await build(f, 'pad');
  assert.deepEqual(padded.skippedEdge, []);
  const wide = patchOf(f, '101_idx5_x2001_y1_class1')!;
  assert.deepEqual(at(wide.px, 0, 0), [0, 0, 201]);
  assert.deepEqual(at(wide.px, 30, 49), [30, 49, 201]);
  assert.deepEqual(at(wide.px, 31, 0), [255, 255, 255]);
  assert.deepEqual(at(wide.px, 49, 49), [255, 255, 255]);
  const tall = patchOf(f, '102_idx5_x1_y2001_class0')!;
  assert.deepEqual(at(tall.px, 49, 31), [49, 31, 202]);
  assert.deepEqual(at(tall.px, 0, 32), [255, 255, 255]);

  const skipped = await build(f, 'skip');
  assert.equal(skipped.upToDate, false, 'a new edge mode rebuilds');
  assert.deepEqual(skipped.skippedEdge.map((s) => [s.id, s.width, s.height]).sort(), [['101_idx5_x2001_y1_class1', 31, 50], ['102_idx5_x1_y2001_class0', 50, 32]]);
  assert.equal(skipped.counts.train + skipped.counts.val + skipped.counts.test, f.rows.length - 2);
  assert.equal(patchOf(f, '101_idx5_x2001_y1_class1'), undefined);
  assert.equal((await build(f, 'skip')).skippedEdge.length, 2, 'still reported when up to date');
});

test('rebuilds only when the manifest, the split or edgePatches change; stale caches are detected', async () => {
  const f = await fixture();
  await build(f);
  const cacheDir = join(f.out, 'cache');
  const again = await build(f);
  assert.equal(again.upToDate, true);
  assert.equal(again.decoded, 0);

  const other = await loadFixture(f.archive, f.out, 7);
  assert.notDeepEqual(other.split.patients, f.split.patients);
  const resplit = await build(other);
  assert.equal(resplit.upToDate, false);
  assert.throws(() => openCache(cacheDir, 'train', { expect: { split: f.split } }), { code: 'STALE_CACHE' });
  openCache(cacheDir, 'train', { expect: { split: other.split, manifestHash: f.meta.manifestHash, edgePatches: 'resize' } }).close();

  // Another manifest: one more patient, organized again.
  writePatches(f.archive, gridSpecs(['109'], 3, 1));
  await organize({ archive: f.archive, out: f.out });
  const grown = await loadFixture(f.archive, f.out, 7);
  assert.notEqual(grown.meta.manifestHash, f.meta.manifestHash);
  assert.throws(() => openCache(cacheDir, 'train', { expect: { manifestHash: grown.meta.manifestHash } }), (e: Error & { code?: string }) => e.code === 'STALE_CACHE' && /another manifest/.test(e.message));
  const rebuilt = await build(grown);
  assert.equal(rebuilt.upToDate, false);
  assert.equal(rebuilt.counts.train + rebuilt.counts.val + rebuilt.counts.test, grown.rows.length);
  // A split made from the old manifest is refused rather than cached.
  await assert.rejects(build({ ...grown, split: f.split }), { code: 'STALE_SPLIT' });
  // Damaged cache files are reported, never used.
  writeFileSync(join(cacheDir, 'val.labels.u8'), new Uint8Array(1));
  assert.throws(() => openCache(cacheDir, 'val'), { code: 'CORRUPT_CACHE' });
  assert.equal((await build(grown)).upToDate, false, 'a damaged split is rebuilt');
});

test('an interrupted build leaves no usable cache.json, keeps finished splits and resumes', async () => {
  const f = await fixture();
  const ac = new AbortController();
  await assert.rejects(build(f, 'resize', {
    signal: ac.signal,
    onProgress: (e) => { if (e.label === 'Caching val patches') ac.abort(); },
  }), { code: 'CANCELLED' });
  const cacheDir = join(f.out, 'cache');
  assert.equal(existsSync(join(cacheDir, CACHE_FILE)), false);
  assert.throws(() => openCache(cacheDir, 'train'), { code: 'NO_CACHE' });
  assert.ok(existsSync(join(cacheDir, 'train.json')), 'train finished before the abort');
  assert.deepEqual(readdirSync(cacheDir).filter((n) => n.endsWith('.tmp')), []);
  const resumed = await build(f);
  assert.deepEqual(resumed.kept, ['train']);
  assert.deepEqual(resumed.built, ['val', 'test']);
  assert.equal(resumed.upToDate, false);
});

test('one build per cache folder: a live lock refuses, a dead one is taken over; a rebuild under an open reader is noticed', async () => {
  const f = await fixture();
  await build(f);
  const cacheDir = join(f.out, 'cache');
  const reader = openCache(cacheDir, 'train');
  writeFileSync(join(cacheDir, 'cache.lock'), JSON.stringify({ pid: process.pid, host: hostname() }));
  await assert.rejects(build(f, 'pad'), { code: 'CACHE_BUSY' });
  assert.ok(existsSync(join(cacheDir, CACHE_FILE)), 'a refused build changes nothing');
  writeFileSync(join(cacheDir, 'cache.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname() }));
  assert.equal((await build(f, 'pad')).upToDate, false);
  assert.equal(existsSync(join(cacheDir, 'cache.lock')), false);
  assert.throws(() => reader.ids, { code: 'STALE_CACHE' });
  assert.equal(reader.readBatch([0]).length, PATCH_BYTES, 'the open file still reads');
  reader.close();
});

test('files that changed since organize are left out and listed with their reason; a missing archive is an error', async () => {
  const f = await fixture();
  const [gone, broken, resized] = assignRows(f.rows, f.split).train.filter((r) => r.width === 50);
  rmSync(join(f.archive, gone.source));
  writeFileSync(join(f.archive, broken.source), readFileSync(join(f.archive, broken.source)).subarray(0, 60));
  writeFileSync(join(f.archive, resized.source), encode({ width: 40, height: 50, data: new Uint8Array(40 * 50 * 3), channels: 3, depth: 8 }));
  const info = await build(f);
  const failed = Object.fromEntries(info.failed.map((x) => [x.id, x]));
  assert.deepEqual(Object.keys(failed).sort(), [gone.id, broken.id, resized.id].sort());
  assert.match(failed[gone.id].reason, /missing file/);
  assert.match(failed[broken.id].reason, /truncated|corrupt/);
  assert.match(failed[resized.id].reason, /40x50 but the manifest says 50x50/);
  assert.equal(failed[gone.id].source, gone.source);
  assert.equal(info.counts.train, assignRows(f.rows, f.split).train.length - 3);
  const r = openCache(join(f.out, 'cache'), 'train');
  assert.equal(r.ids.includes(gone.id), false);
  assert.equal(r.ids.length, r.size);
  r.close();
  assert.deepEqual((await build(f)).failed.map((x) => x.id).sort(), Object.keys(failed).sort(), 'failures stay reported');

  await assert.rejects(build(f, 'resize', { cacheDir: join(f.archive, 'cache') }), { code: 'OUT_IN_ARCHIVE' });
  await assert.rejects(build(f, 'resize', { force: true, archive: join(f.archive, 'nope') }), (e: Error & { code?: string; hint?: string }) => e.code === 'NO_ARCHIVE' && /idc organize/.test(e.hint ?? ''));
});

test('batches: deterministic per (seed, epoch), every row once per epoch, different epochs differ, replayable', async () => {
  const f = await fixture();
  await build(f);
  for (const memory of [true, false]) {
    const r = openCache(join(f.out, 'cache'), 'train', { memory });
    assert.equal(r.inMemory, memory);
    const collect = async (opts: Parameters<typeof r.batches>[0]) => {
      const out: { indices: number[]; x: Uint8Array; y: number[] }[] = [];
      for await (const b of r.batches(opts)) {
        assert.equal(b.x.length, b.indices.length * PATCH_BYTES);
        assert.deepEqual(b.x, r.readBatch(b.indices));
        assert.deepEqual([...b.y], [...b.indices].map((i) => r.labels[i]));
        out.push({ indices: [...b.indices], x: b.x, y: [...b.y] });
      }
      return out;
    };
    const e0 = await collect({ batchSize: 4, shuffle: true, seed: 3, epoch: 0 });
    assert.deepEqual(await collect({ batchSize: 4, shuffle: true, seed: 3, epoch: 0 }), e0);
    assert.deepEqual(await collect({ batchSize: 4, shuffle: true, seed: 3, epoch: 0, prefetch: true }), e0);
    const all = e0.flatMap((b) => b.indices);
    assert.deepEqual([...all].sort((a, b) => a - b), Array.from({ length: r.size }, (_, i) => i));
    assert.equal(e0.length, Math.ceil(r.size / 4));
    const e1 = (await collect({ batchSize: 4, shuffle: true, seed: 3, epoch: 1 })).flatMap((b) => b.indices);
    assert.notDeepEqual(e1, all);
    assert.notDeepEqual((await collect({ batchSize: 4, shuffle: true, seed: 4, epoch: 0 })).flatMap((b) => b.indices), all);
    assert.deepEqual(await collect({ batchSize: 4, shuffle: true, seed: 3, epoch: 0, startBatch: 2 }), e0.slice(2));
    const dropped = await collect({ batchSize: 3, shuffle: true, seed: 3, epoch: 0, dropRemainder: true });
    assert.equal(dropped.length, Math.floor(r.size / 3));
    assert.ok(dropped.every((b) => b.indices.length === 3));
    const plain = (await collect({ batchSize: 5, shuffle: false })).flatMap((b) => b.indices);
    assert.deepEqual(plain, Array.from({ length: r.size }, (_, i) => i));
    assert.throws(() => r.readBatch([r.size]), RangeError);
    r.close();
  }
  assert.deepEqual(epochOrder(10, 1, 2), epochOrder(10, 1, 2));
});

test('zip archives and worker threads give the same bytes as folders on this thread', async () => {
  const f = await fixture();
  await build(f);
  const ref = join(f.out, 'cache');

  // Worker path: bundle the worker the way the build script does.
  const workerDir = tempDir('idc-cache-worker-');
  buildSync({ entryPoints: [resolve(__dirname, '../src/core/cache/decode.worker.ts')], outfile: join(workerDir, 'decode.worker.js'), bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });
  const threaded = await build(f, 'resize', { cacheDir: join(f.out, 'cache-w'), workerFile: join(workerDir, 'decode.worker.js'), threads: 2 });
  assert.deepEqual(threaded.failed, []);

  // Deflated and stored entries, some with zip64 records, as zip tools mix them.
  const zipFile = join(tempDir('idc-cache-zip-'), 'archive.zip');
  const zip = new yazl.ZipFile();
  f.rows.forEach((r, i) => zip.addBuffer(readFileSync(join(f.archive, r.source)), r.source, { compress: i % 2 === 0, forceZip64Format: i % 3 === 0 }));
  zip.end({ forceZip64Format: true } as yazl.EndOptions); // in yazl, missing from its types
  await new Promise<void>((res, rej) => zip.outputStream.pipe(createWriteStream(zipFile)).on('close', res).on('error', rej));
  // The one-read central directory agrees with yauzl's, zip64 fields included.
  const direct = readZipDirectory(zipFile);
  const listing = await listZipWithYauzl(zipFile);
  assert.equal(direct.size, listing.entries.length);
  for (const e of listing.entries) {
    const rec = (e as unknown as { entry: { relativeOffsetOfLocalHeader: number; compressedSize: number; uncompressedSize: number; crc32: number; compressionMethod: number } }).entry;
    const slot = direct.get(e.rel)!;
    assert.deepEqual([slot.offset, slot.compressedSize, slot.uncompressedSize, slot.crc, slot.method], [rec.relativeOffsetOfLocalHeader, rec.compressedSize, rec.uncompressedSize, rec.crc32, rec.compressionMethod]);
  }
  listing.close();
  const zout = tempDir('idc-cache-zout-');
  await organize({ archive: zipFile, out: zout });
  const z = await loadFixture(zipFile, zout, 1);
  assert.equal(z.meta.kind, 'zip');
  assert.equal(z.meta.manifestHash, f.meta.manifestHash);
  const zinfo = await build({ ...z, split: f.split });
  assert.deepEqual(zinfo.failed, []);
  await build({ ...z, split: f.split }, 'resize', { cacheDir: join(zout, 'cache-w'), workerFile: join(workerDir, 'decode.worker.js'), threads: 2 });
  await build({ ...z, split: f.split }, 'resize', { cacheDir: join(zout, 'cache-s'), zipStreams: true });

  for (const dir of [join(f.out, 'cache-w'), join(zout, 'cache'), join(zout, 'cache-w'), join(zout, 'cache-s')]) {
    for (const s of SPLIT_NAMES) {
      for (const file of [`${s}.u8`, `${s}.labels.u8`, `${s}.ids.json`]) assert.ok(readFileSync(join(dir, file)).equals(readFileSync(join(ref, file))), `${dir}/${file}`);
    }
  }

  // A stored entry damaged inside the zip after organize: caught by the entry's CRC, listed, the rest cached.
  const victim = f.rows[1];
  const bytes = readFileSync(zipFile);
  const at = bytes.indexOf(readFileSync(join(f.archive, victim.source)));
  assert.ok(at > 0);
  bytes[at + 100] ^= 0x40;
  writeFileSync(zipFile, bytes);
  const damaged = await build({ ...z, split: f.split }, 'resize', { force: true });
  assert.deepEqual(damaged.failed.map((x) => [x.id, x.reason]), [[victim.id, 'corrupt zip entry (CRC mismatch)']]);
});

/** A PNG from raw samples, with filter type `y % 5` on row y, so every filter is exercised. */
function rawPng(w: number, h: number, colorType: number, depth: number, samples: Uint8Array, chunks: [string, Uint8Array][] = [], interlace = 0): Uint8Array {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const bpp = Math.max(1, (channels * depth) / 8);
  const stride = Math.ceil((w * channels * depth) / 8);
  const raw = new Uint8Array(h * (stride + 1));
  for (let y = 0; y < h; y++) {
    const f = y % 5;
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const cur = samples[y * stride + i];
      const a = i >= bpp ? samples[y * stride + i - bpp] : 0;
      const b = y > 0 ? samples[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= bpp ? samples[(y - 1) * stride + i - bpp] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f];
      raw[y * (stride + 1) + 1 + i] = (cur - pred) & 255;
    }
  }
  const chunk = (type: string, data: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'latin1'), data])));
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth; ihdr[9] = colorType; ihdr[12] = interlace;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...chunks.map(([t, d]) => chunk(t, d)), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

test('decoder: all five filters on the fast path; RGBA, grey, 16-bit, palette, 1-bit and interlaced become RGB8', () => {
  const rng = new Rng(5);
  // Narrow-range noise: predictor ties (which Paeth must break exactly as the spec says) are common.
  const big = new Uint8Array(50 * 50 * 3).map(() => 100 + rng.int(0, 6));
  assert.deepEqual(decodeRgb(rawPng(50, 50, 2, 8, big)).rgb, big);
  const w = 7, h = 11;
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 53 + (i >> 3) * 7) & 255;
  assert.deepEqual(decodeRgb(rawPng(w, h, 2, 8, rgb)).rgb, rgb);

  const grey = (v: number) => [v, v, v];
  const px = (img: { rgb: Uint8Array; width: number }, x: number, y: number) => Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  const rgba = new Uint8Array(w * h * 4).map((_, i) => (i * 11) & 255);
  assert.deepEqual(px(decodeRgb(encode({ width: w, height: h, data: rgba, channels: 4, depth: 8 })), 2, 3), Array.from(rgba.subarray((3 * w + 2) * 4, (3 * w + 2) * 4 + 3)));
  const g8 = new Uint8Array(w * h).map((_, i) => i * 3);
  assert.deepEqual(px(decodeRgb(encode({ width: w, height: h, data: g8, channels: 1, depth: 8 })), 4, 5), grey(g8[5 * w + 4]));
  const ga = new Uint8Array(w * h * 2).map((_, i) => i);
  assert.deepEqual(px(decodeRgb(encode({ width: w, height: h, data: ga, channels: 2, depth: 8 })), 1, 1), grey(ga[(w + 1) * 2]));
  const rgb16 = new Uint16Array(w * h * 3).map((_, i) => i * 300);
  assert.deepEqual(px(decodeRgb(encode({ width: w, height: h, data: rgb16, channels: 3, depth: 16 })), 3, 2), Array.from(rgb16.subarray((2 * w + 3) * 3, (2 * w + 3) * 3 + 3)).map((v) => v >> 8));
  const palette = [[10, 20, 30], [40, 50, 60], [70, 80, 90]];
  const idx = new Uint8Array(w * h).map((_, i) => i % 3);
  assert.deepEqual(px(decodeRgb(encode({ width: w, height: h, data: idx, channels: 1, depth: 8, palette })), 5, 0), palette[5 % 3]);
  // 1-bit grey, packed: pixels alternate black and white.
  const stride = Math.ceil(w / 8);
  const bits = new Uint8Array(stride * h).fill(0b10101010);
  const one = decodeRgb(rawPng(w, h, 0, 1, bits));
  assert.deepEqual([px(one, 0, 0), px(one, 1, 0), px(one, 6, 10)], [grey(255), grey(0), grey(255)]);
  const interlaced = encode({ width: w, height: h, data: rgb, channels: 3, depth: 8 }, { interlace: 'Adam7' });
  assert.deepEqual(decodeRgb(interlaced).rgb, rgb);
  assert.deepEqual(toRgb8(decode(encode({ width: w, height: h, data: rgb, channels: 3, depth: 8 }))), rgb);
  assert.throws(() => decodeRgb(new Uint8Array(0)), /empty file/);
  assert.throws(() => decodeRgb(Buffer.from('GIF89a............................')), /not a PNG/);
});

test('real sample: every patch cached, the fast decoder agrees with fast-png on every file', { skip: !existsSync(SAMPLE) && 'shared sample not present' }, async () => {
  const out = tempDir('idc-cache-sample-');
  await organize({ archive: SAMPLE, out });
  const f = await loadFixture(SAMPLE, out, 1);
  const info = await build(f);
  assert.deepEqual(info.failed, []);
  assert.equal(info.counts.train + info.counts.val + info.counts.test, 4578);
  for (const r of f.rows) {
    const bytes = readFileSync(join(SAMPLE, r.source));
    assert.deepEqual(decodeRgb(bytes).rgb, toRgb8(decode(bytes)), r.source);
  }
  const skipped = await build(f, 'skip');
  assert.deepEqual(skipped.skippedEdge.map((s) => `${s.width}x${s.height}`).sort(), ['31x50', '32x50']);
  assert.equal(skipped.counts.train + skipped.counts.val + skipped.counts.test, 4576);
});
