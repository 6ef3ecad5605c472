import { existsSync, statSync, readdirSync, rmSync, statfsSync, writeFileSync, readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { IdcError, throwIfCancelled } from '../errors';
import { formatBytes } from '../format';
import { mkdirpOrExplain, readJsonIfExists, wrapWriteError, writeFileAtomic, writeJsonAtomic } from '../fsutil';
import { noProgress, throttled, type ProgressSink } from '../progress';
import type { ManifestRow } from '../manifest';
import { PATCH_SIZE } from '../naming';
import { assignRows, SPLIT_NAMES, type SplitFile, type SplitName } from '../split';
import { listZipWithYauzl, type ArchiveEntry, type ArchiveListing } from '../organize/listing';
import { describeReadError, type DecodeJob, type DecodeResult } from './decode-chunk';
import { packSlot, type ZipSlot } from './zip-read';
import { readZipDirectory } from './zip-directory';
import { DecodePool } from './pool';
import { PATCH_BYTES, type EdgeMode } from './pixels';
import {
  CACHE_FILE, CACHE_VERSION, dataFile, idsFile, labelsFile, splitHash, splitKey, splitMetaFile,
  type CacheFailure, type CacheManifest, type EdgeSkip, type SplitCacheMeta,
} from './format';

export interface BuildCacheOptions {
  outputDir: string;
  split: SplitFile;
  /** The whole manifest; assignRows picks each split's rows. */
  rows: readonly ManifestRow[];
  manifestHash: string;
  /** From manifest.meta.json: where organize read the patches. */
  archive: string;
  archiveKind: 'dir' | 'zip';
  edgePatches: EdgeMode;
  /** Default `<outputDir>/cache`. */
  cacheDir?: string;
  /** Rebuild every split even when the cache matches. */
  force?: boolean;
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  /** Decode threads; 0 decodes on this thread. Default: one per core (at most 8) when the bundled worker exists. */
  threads?: number;
  /** The decode worker script; default decode.worker.js beside this bundle (tests and benches pass their own). */
  workerFile?: string;
  /** Test hook: read zip entries through yauzl on this thread even when they could be read directly. */
  zipStreams?: boolean;
}

export interface CacheInfo {
  cacheDir: string;
  /** Nothing was decoded: the cache already matched the manifest, split and edge mode. */
  upToDate: boolean;
  /** Splits decoded by this call, and splits kept from an earlier (possibly interrupted) build. */
  built: SplitName[];
  kept: SplitName[];
  counts: Record<SplitName, number>;
  positives: Record<SplitName, number>;
  edgePatches: EdgeMode;
  /** Edge patches left out under edgePatches 'skip'. */
  skippedEdge: EdgeSkip[];
  /** Patches in the manifest that could not be decoded; they are not in the cache. */
  failed: CacheFailure[];
  manifestHash: string;
  splitHash: string;
  /** Patches decoded by this call and how long it took. */
  decoded: number;
  seconds: number;
}

/** Shown with any decode failure: the manifest no longer describes the archive. */
export const FAILURE_HINT = 'The archive changed since it was organized; run "idc organize" again (then "idc split" if patients changed), or restore the files.';

/** Patches per job: ~1.9 MB of pixels, small enough to keep every thread busy to the end. */
const CHUNK = 256;

/**
 * Decodes every patch of the split into `<cacheDir>/<split>.u8` (N x 50 x 50 x 3 uint8, RGB),
 * `<split>.labels.u8` and `<split>.ids.json`, then cache.json. Up to date (returns at once) when
 * cache.json matches the manifest hash, the split's patients and the edge mode.
 *
 * Crash safety: cache.json is removed before anything changes and written last; each split's
 * files are written to temp files and renamed, then `<split>.json` marks the split complete, so
 * an interrupted build keeps the splits it finished.
 *
 * A patch that fails to decode (changed, deleted or corrupted since organize) is left out and
 * listed in `failed` with its reason rather than failing the build: one bad file in 277k should
 * not cost a rebuild of minutes. Beyond FAILURE_LIMIT the archive has clearly changed, and the
 * build stops with an IdcError naming the first files.
 */
export async function buildCache(opts: BuildCacheOptions): Promise<CacheInfo> {
  const started = performance.now();
  const progress = opts.onProgress ?? noProgress;
  const cacheDir = resolve(opts.cacheDir ?? join(opts.outputDir, 'cache'));
  if (opts.split.manifestHash !== opts.manifestHash) {
    throw new IdcError('The split was made from a different manifest than the current one.', 'Run "idc split" again, then build the cache.', 'STALE_SPLIT');
  }
  const sHash = splitHash(opts.split);
  const edge = opts.edgePatches;
  const inside = relative(resolve(opts.archive), cacheDir);
  if (opts.archiveKind === 'dir' && (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside)))) {
    throw new IdcError(`The cache folder ${cacheDir} is inside the archive ${resolve(opts.archive)}.`, 'Set data.cacheDir in idc.config.json to a folder outside the raw archive: the archive is never written to.', 'OUT_IN_ARCHIVE');
  }

  const current = await readJsonIfExists<CacheManifest>(join(cacheDir, CACHE_FILE)).catch(() => undefined);
  if (!opts.force && current && current.version === CACHE_VERSION && current.manifestHash === opts.manifestHash && current.splitHash === sHash
    && current.edgePatches === edge && SPLIT_NAMES.every((s) => current.splits?.[s] && filesMatch(cacheDir, s, current.splits[s].count))) {
    return info(cacheDir, current.splits, [], SPLIT_NAMES.slice(), true, opts.manifestHash, sHash, edge, 0, started);
  }

  const perSplit = assignRows(opts.rows, opts.split);
  const metas = {} as Record<SplitName, SplitCacheMeta>;
  const todo: { name: SplitName; key: string; rows: ManifestRow[]; skipped: EdgeSkip[] }[] = [];
  for (const name of SPLIT_NAMES) {
    const key = splitKey(opts.manifestHash, name, opts.split.patients[name], edge);
    const prior = opts.force ? undefined : await readJsonIfExists<SplitCacheMeta>(join(cacheDir, splitMetaFile(name))).catch(() => undefined);
    if (prior && prior.version === CACHE_VERSION && prior.key === key && filesMatch(cacheDir, name, prior.count)) {
      metas[name] = prior;
      continue;
    }
    const rows: ManifestRow[] = [];
    const skipped: EdgeSkip[] = [];
    for (const r of perSplit[name]) {
      if (edge === 'skip' && (r.width < PATCH_SIZE || r.height < PATCH_SIZE)) skipped.push({ split: name, id: r.id, width: r.width, height: r.height });
      else rows.push(r);
    }
    todo.push({ name, key, rows, skipped });
  }
  const total = todo.reduce((s, t) => s + t.rows.length, 0);
  let decoded = 0;
  mkdirpOrExplain(cacheDir);
  const unlock = lock(cacheDir);
  try {
    if (todo.length) {
      // Checked before anything is removed, so a build that cannot start leaves the old cache usable.
      checkArchive(opts.archive, opts.archiveKind);
      const stale = todo.flatMap((t) => [dataFile(t.name), labelsFile(t.name), idsFile(t.name)]);
      checkFreeSpace(cacheDir, total * (PATCH_BYTES + 40) - stale.reduce((sum, f) => sum + sizeOf(join(cacheDir, f)), 0));
    }
    rmSync(join(cacheDir, CACHE_FILE), { force: true });
    removeTempFiles(cacheDir);
    for (const t of todo) {
      rmSync(join(cacheDir, splitMetaFile(t.name)), { force: true });
      // Stale and about to be replaced: free the space now (a reader that has them open keeps its copy).
      for (const f of [dataFile(t.name), labelsFile(t.name), idsFile(t.name)]) tryRemove(join(cacheDir, f));
    }
    if (todo.length) {
      const source = opts.archiveKind === 'zip' ? await zipSource(opts.archive, opts.zipStreams) : undefined;
      const workerFile = opts.workerFile ?? join(__dirname, 'decode.worker.js');
      const threads = opts.threads ?? (existsSync(workerFile) ? Math.min(availableParallelism(), 8) : 0);
      const pool = new DecodePool(threads > 0 ? workerFile : undefined, Math.min(threads, Math.ceil(total / CHUNK)));
      const ctx: BuildContext = {
        cacheDir, edge, pool, zip: source, archive: resolve(opts.archive), signal: opts.signal,
        failureLimit: Math.max(50, Math.ceil(total * 0.01)), failures: 0,
        tick: throttled(progress), total, done: 0,
      };
      try {
        for (const t of todo) {
          progress({ phase: 'cache.decode', label: `Caching ${t.name} patches`, done: ctx.done, total, unit: 'patches' });
          metas[t.name] = await buildSplit(ctx, t.name, t.key, t.rows, t.skipped);
          decoded += t.rows.length;
        }
        ctx.tick({ phase: 'cache.decode', label: 'Caching patches', done: total, total, unit: 'patches' });
      } finally {
        await pool.close();
        if (source?.kind === 'streams') source.listing.close();
      }
    }

    const manifest: CacheManifest = {
      version: CACHE_VERSION,
      layout: { height: PATCH_SIZE, width: PATCH_SIZE, channels: 3, dtype: 'uint8', order: 'NHWC', color: 'RGB' },
      manifestHash: opts.manifestHash, splitHash: sHash, edgePatches: edge,
      archive: resolve(opts.archive), archiveKind: opts.archiveKind, createdAt: new Date().toISOString(), splits: metas,
    };
    await writeJsonAtomic(join(cacheDir, CACHE_FILE), manifest);
  } finally {
    unlock();
  }
  const built = todo.map((t) => t.name);
  return info(cacheDir, metas, built, SPLIT_NAMES.filter((s) => !built.includes(s)), false, opts.manifestHash, sHash, edge, decoded, started);
}

/** Zip entries are read on the decode threads at slots from the central directory; through yauzl streams only as a fallback. */
type ZipSource = { kind: 'direct'; slots: Map<string, ZipSlot> } | { kind: 'streams'; listing: ArchiveListing; byRel: Map<string, ArchiveEntry> };

interface BuildContext {
  cacheDir: string;
  edge: EdgeMode;
  pool: DecodePool;
  zip?: ZipSource;
  archive: string;
  signal?: AbortSignal;
  failureLimit: number;
  failures: number;
  tick: ProgressSink;
  total: number;
  done: number;
}

async function buildSplit(ctx: BuildContext, name: SplitName, key: string, rows: ManifestRow[], skippedEdge: EdgeSkip[]): Promise<SplitCacheMeta> {
  const dataPath = join(ctx.cacheDir, dataFile(name));
  const tmp = tempName(dataPath);
  const labels = new Uint8Array(rows.length);
  const ids: string[] = [];
  const failed: CacheFailure[] = [];
  let count = 0;
  let positives = 0;
  const fh = await fsp.open(tmp, 'w').catch((e: unknown) => { throw wrapWriteError(e, dataPath); });
  try {
    // Jobs run ahead of the writer by a bounded window; results are written in order.
    const window: Promise<DecodeResult>[] = [];
    const ahead = Math.max(2, ctx.pool.threads * 3);
    let next = 0;
    let position = 0;
    for (let c = 0; c * CHUNK < rows.length; c++) {
      while (window.length < ahead && next * CHUNK < rows.length) {
        throwIfCancelled(ctx.signal);
        const p = startJob(ctx, rows.slice(next * CHUNK, (next + 1) * CHUNK));
        p.catch(() => {}); // awaited in order below; this only keeps Node from calling a later rejection unhandled
        window.push(p);
        next++;
      }
      const r = await window.shift()!;
      const chunk = rows.slice(c * CHUNK, (c + 1) * CHUNK);
      for (const f of r.failures) failed.push({ split: name, id: chunk[f.i].id, source: chunk[f.i].source, reason: f.reason });
      ctx.failures += r.failures.length;
      if (ctx.failures > ctx.failureLimit) throw tooManyFailures(ctx, failed);
      for (let i = 0; i < chunk.length; i++) {
        if (!r.ok[i]) continue;
        labels[count++] = chunk[i].label;
        positives += chunk[i].label;
        ids.push(chunk[i].id);
      }
      const bytes = r.count * PATCH_BYTES;
      await writeFully(fh, r.data, bytes, position, dataPath);
      position += bytes;
      ctx.done += chunk.length;
      ctx.tick({ phase: 'cache.decode', label: `Caching ${name} patches`, done: ctx.done, total: ctx.total, unit: 'patches', message: failed.length ? `${ctx.failures} unreadable` : undefined });
    }
    throwIfCancelled(ctx.signal);
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, dataPath);
  } catch (e) {
    await fh.close().catch(() => {});
    rmSync(tmp, { force: true });
    throw e;
  }
  await writeFileAtomic(join(ctx.cacheDir, labelsFile(name)), labels.subarray(0, count));
  await writeFileAtomic(join(ctx.cacheDir, idsFile(name)), JSON.stringify(ids));
  const meta: SplitCacheMeta = { version: CACHE_VERSION, split: name, key, count, positives, skippedEdge, failed };
  await writeJsonAtomic(join(ctx.cacheDir, splitMetaFile(name)), meta);
  return meta;
}

function startJob(ctx: BuildContext, rows: ManifestRow[]): Promise<DecodeResult> {
  const sizes: number[] = [];
  for (const r of rows) sizes.push(r.width, r.height);
  const job: DecodeJob = { sources: rows.map((r) => r.source), sizes, edge: ctx.edge === 'pad' ? 'pad' : 'resize' };
  if (!ctx.zip) return ctx.pool.run({ ...job, root: ctx.archive });
  const zip = ctx.zip;
  if (zip.kind === 'direct') {
    const slots: number[] = [];
    const failed: Record<number, string> = {};
    rows.forEach((r, i) => {
      const slot = zip.slots.get(r.source);
      if (!slot) failed[i] = 'no longer in the zip file';
      packSlot(slot ?? { offset: -1, compressedSize: 0, uncompressedSize: 0, method: 0, crc: 0, flags: 0, nameLength: 0 }, slots);
    });
    return ctx.pool.run({ ...job, zip: { path: ctx.archive, slots }, failed });
  }
  return readZipEntries(zip, rows).then(({ bytes, ends, failed }) => ctx.pool.run({ ...job, bytes, ends, failed }));
}


/** Fallback: zip entries read here through yauzl (slow: a stream per entry), decoded on the pool. */
async function readZipEntries(zip: Extract<ZipSource, { kind: 'streams' }>, rows: ManifestRow[]): Promise<{ bytes: Uint8Array; ends: number[]; failed: Record<number, string> }> {
  const failed: Record<number, string> = {};
  const parts = await Promise.all(rows.map(async (r, i) => {
    const entry = zip.byRel.get(r.source);
    if (!entry) { failed[i] = 'no longer in the zip file'; return undefined; }
    try {
      return await zip.listing.read(entry);
    } catch (e) {
      failed[i] = `unreadable zip entry: ${(e as Error).message}`;
      return undefined;
    }
  }));
  const ends: number[] = [];
  let size = 0;
  for (const p of parts) ends.push((size += p?.length ?? 0));
  const bytes = new Uint8Array(size);
  let o = 0;
  for (const p of parts) if (p) { bytes.set(p, o); o += p.length; }
  return { bytes, ends, failed };
}

async function zipSource(archive: string, streams = false): Promise<ZipSource> {
  if (!streams) {
    try {
      return { kind: 'direct', slots: readZipDirectory(archive) };
    } catch { /* unusual layout: yauzl copes with more */ }
  }
  let listing: ArchiveListing;
  try {
    listing = await listZipWithYauzl(archive);
  } catch (e) {
    throw new IdcError(`${archive} is not a readable zip file any more: ${(e as Error).message}`, FAILURE_HINT, 'BAD_ZIP');
  }
  return { kind: 'streams', listing, byRel: new Map(listing.entries.map((e) => [e.rel, e])) };
}

async function writeFully(fh: fsp.FileHandle, data: Uint8Array, length: number, position: number, target: string): Promise<void> {
  let off = 0;
  try {
    while (off < length) {
      const { bytesWritten } = await fh.write(data, off, length - off, position + off);
      off += bytesWritten;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new IdcError(`Disk full while writing ${target}.`, 'Free some space (or set data.cacheDir in idc.config.json to another disk) and run the command again; finished splits are kept.', 'ENOSPC');
    throw wrapWriteError(e, target);
  }
}

function tooManyFailures(ctx: BuildContext, failed: CacheFailure[]): IdcError {
  const shown = failed.slice(0, 5).map((f) => `  ${join(ctx.archive, f.source)}: ${f.reason}`).join('\n');
  return new IdcError(`More than ${ctx.failureLimit} patches could not be read from ${ctx.archive}; the first ones:\n${shown}`, FAILURE_HINT, 'CACHE_DECODE_FAILED');
}

function checkArchive(archive: string, kind: 'dir' | 'zip'): void {
  let ok = false;
  let why = 'not found';
  try {
    const st = statSync(archive);
    ok = kind === 'dir' ? st.isDirectory() : st.isFile();
    if (!ok) why = kind === 'dir' ? 'is not a folder any more' : 'is not a file any more';
  } catch (e) {
    why = describeReadError(e);
  }
  if (!ok) throw new IdcError(`The archive that was organized, ${archive}, is ${why === 'not found' ? 'gone' : why}.`, 'Put the archive back, or point paths.archive at it and run "idc organize" again.', 'NO_ARCHIVE');
}

/** Bytes this process may write in dir's file system. */
function freeBytesOf(dir: string): number {
  const st = statfsSync(dir);
  return st.bavail * st.bsize;
}

/** Refuses a cache build that would not fit; `freeBytes` is replaceable for tests. */
export function checkFreeSpace(dir: string, needed: number, freeBytes: (dir: string) => number = freeBytesOf): void {
  let free: number;
  try {
    free = freeBytes(dir);
  } catch {
    return; // unknown: let the write itself report ENOSPC
  }
  if (free < needed) {
    let [need, have] = [formatBytes(needed), formatBytes(free)];
    // Rounded to the same figure, "needs 1.2 GB, only 1.2 GB free" would read as a contradiction.
    if (need === have) [need, have] = [`${needed.toLocaleString('en-US')} bytes`, `${free.toLocaleString('en-US')} bytes`];
    throw new IdcError(`The patch cache needs about ${need} in ${dir}, but only ${have} is free.`, 'Free some space, or set data.cacheDir in idc.config.json to a disk with room.', 'ENOSPC');
  }
}

function sizeOf(file: string): number {
  try { return statSync(file).size; } catch { return 0; }
}

function tryRemove(file: string): void {
  try { rmSync(file, { force: true }); } catch { /* e.g. held open on Windows: the rename later replaces it */ }
}

const LOCK_FILE = 'cache.lock';

/**
 * One build per cache folder at a time (the extension and the CLI may both start training):
 * they would delete each other's temp files. A lock whose process is gone is taken over.
 */
function lock(cacheDir: string): () => void {
  const file = join(cacheDir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, mine, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw wrapWriteError(e, file);
    }
    let holder: { pid?: number; host?: string } | undefined;
    try { holder = JSON.parse(readFileSync(file, 'utf8')); } catch { /* torn or unreadable: stale */ }
    if (holder?.pid !== undefined && (holder.host !== hostname() || isAlive(holder.pid))) {
      throw new IdcError(`Another process (pid ${holder.pid} on ${holder.host}) is building the patch cache in ${cacheDir}.`, `Wait for it to finish; if that process is gone, delete ${file}.`, 'CACHE_BUSY');
    }
    rmSync(file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function filesMatch(cacheDir: string, split: SplitName, count: number): boolean {
  try {
    return statSync(join(cacheDir, dataFile(split))).size === count * PATCH_BYTES
      && statSync(join(cacheDir, labelsFile(split))).size === count
      && existsSync(join(cacheDir, idsFile(split)));
  } catch {
    return false;
  }
}

const TEMP_RE = /^\.((train|val|test)\.(u8|labels\.u8|ids\.json|json)|cache\.json)\.\d+\.[0-9a-f]+\.tmp$/;

/** Same pattern as fsutil's atomic writes, so removeTempFiles finds both. */
function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Temp files of an interrupted build (the data ones are large). */
function removeTempFiles(dir: string): void {
  for (const f of readdirSync(dir)) if (TEMP_RE.test(f)) rmSync(join(dir, f), { force: true });
}

function info(cacheDir: string, metas: Record<SplitName, SplitCacheMeta>, built: SplitName[], kept: SplitName[], upToDate: boolean, manifestHash: string, sHash: string, edge: EdgeMode, decoded: number, started: number): CacheInfo {
  const counts = {} as Record<SplitName, number>;
  const positives = {} as Record<SplitName, number>;
  for (const s of SPLIT_NAMES) { counts[s] = metas[s].count; positives[s] = metas[s].positives; }
  return {
    cacheDir, upToDate, built, kept, counts, positives, edgePatches: edge,
    skippedEdge: SPLIT_NAMES.flatMap((s) => metas[s].skippedEdge),
    failed: SPLIT_NAMES.flatMap((s) => metas[s].failed),
    manifestHash, splitHash: sHash, decoded, seconds: (performance.now() - started) / 1000,
  };
}
