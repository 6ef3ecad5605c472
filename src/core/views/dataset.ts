/**
 * The dataset panel's view model: class balance per split, patients, the leakage check and a
 * random patch sample, from manifest.csv, split.json and organize-report.json. Pure file reading
 * (no `vscode`, no TF.js). The manifest is aggregated in one pass, so the real archive's 277k
 * rows take well under a second; its parsed rows are kept (one manifest at a time) for reshuffles.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIdcError } from '../errors';
import { MANIFEST_COLUMNS, manifestHash, parseManifest, type ManifestRow } from '../manifest';
import { SPLIT_NAMES, checkNoOverlap, type SplitFile, type SplitName } from '../split';
import { Rng } from '../rng';
import { PATCH_SIZE } from '../naming';
import { patchImagePaths } from './patch-images';
import type { DatasetPatient, DatasetView, OrganizeBrief, PatchTile, PatientStain, SplitCounts, SplitSettings } from './types';
import { fileVersionKey } from '../fsutil';
import { stainsFile, type CacheFailure, type CacheManifest } from '../cache/format';
import { readCacheManifest } from '../cache/reader';
import type { StainTable } from '../cache/stains';

export const MANIFEST_FILE = 'manifest.csv';
export const SPLIT_FILE = 'split.json';
export const ORGANIZE_REPORT_FILE = 'organize-report.json';
const MANIFEST_META_FILE = 'manifest.meta.json';

export interface DatasetSources {
  /** Workspace folder (shown only). */
  folder: string;
  /** The archive: a folder or the Kaggle .zip. */
  archive: string;
  outputDir: string;
  /** Default <outputDir>/manifest.csv, split.json, organize-report.json. */
  manifest?: string;
  split?: string;
  organizeReport?: string;
  /** The patch cache (data.cacheDir), where stain estimates live; default <outputDir>/cache. */
  cacheDir?: string;
}

export interface SampleOptions {
  count: number;
  /** Same seed, same sample; a fresh one each call without. */
  seed?: number;
  split?: SplitName;
}

/** Default size of the random patch grid. */
export const SAMPLE_SIZE = 48;

// ------------------------------------------------------------------------------------- manifest scan

/** Per-patient counts, independent of the split. */
interface PatientAgg { patient: string; patches: number; positives: number; edgePatches: number }

/**
 * The manifest as the panel needs it, from one scan of the text: per-patient counts, each row's
 * line start and patient (for sampling), and the content hash. No row objects: the real
 * manifest's 277k rows would cost tens of MB of heap in the extension host for nothing.
 */
interface ScannedManifest {
  key: string;
  file: string;
  text: string;
  hash: string;
  rows: number;
  /** Start offset of each data line in `text`. */
  starts: Uint32Array;
  /** Index into `patients` of each row. */
  patientOf: Uint32Array;
  patients: PatientAgg[];
}
let manifestCache: ScannedManifest | undefined;

const HEADER = MANIFEST_COLUMNS.join(',');

/** The scanned manifest; rescanned only when the file changed. */
function loadManifest(file: string): ScannedManifest {
  const key = fileVersionKey(file);
  if (manifestCache && key && manifestCache.file === file && manifestCache.key === key) return manifestCache;
  const text = readFileSync(file, 'utf8');
  const scanned = scanManifest(text, file);
  manifestCache = { ...scanned, key: key ?? '', file, text, hash: recordedHash(file, scanned.rows) ?? manifestHash(text) };
  return manifestCache;
}

/** organize's manifest.meta.json records the hash: reuse it when it is about this file (saves hashing 20 MB). */
function recordedHash(manifest: string, rows: number): string | undefined {
  try {
    const metaFile = join(dirname(manifest), MANIFEST_META_FILE);
    if (statSync(metaFile).mtimeMs < statSync(manifest).mtimeMs) return undefined;
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { manifestHash?: unknown; rows?: unknown };
    return typeof meta.manifestHash === 'string' && meta.rows === rows ? meta.manifestHash : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One pass with indexOf: the first seven columns never hold commas or quotes (ids and patients
 * are digits and underscores; only `source` may be quoted), so they are found without a CSV
 * parser. Anything unexpected goes to parseManifest, which names the bad line.
 */
function scanManifest(text: string, file: string): Omit<ScannedManifest, 'key' | 'file' | 'text' | 'hash'> {
  if (!text.startsWith(HEADER + '\n') && !text.startsWith(HEADER + '\r\n') && text !== HEADER) parseManifest(text, file);
  const n = text.length;
  let starts: Uint32Array<ArrayBuffer> = new Uint32Array(1 << 16);
  let patientOf: Uint32Array<ArrayBuffer> = new Uint32Array(1 << 16);
  const patients: PatientAgg[] = [];
  const index = new Map<string, number>();
  let rows = 0;
  let lastName = '';
  let last = -1;
  let pos = text.indexOf('\n') + 1;
  while (pos > 0 && pos < n) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    if (end === pos || (end === pos + 1 && text.charCodeAt(pos) === 13)) { pos = end + 1; continue; }
    const c1 = text.indexOf(',', pos);
    const c2 = text.indexOf(',', c1 + 1);
    const c3 = text.indexOf(',', c2 + 1);
    const c4 = text.indexOf(',', c3 + 1);
    const c5 = text.indexOf(',', c4 + 1);
    const c6 = text.indexOf(',', c5 + 1);
    const c7 = text.indexOf(',', c6 + 1);
    const label = text.charCodeAt(c4 + 1) - 48;
    const width = int(text, c5 + 1, c6);
    const height = int(text, c6 + 1, c7);
    if (c1 <= pos || c2 <= c1 + 1 || c7 < 0 || c7 >= end || c5 !== c4 + 2 || (label !== 0 && label !== 1) || !(width > 0) || !(height > 0)) {
      parseManifest(text, file);
      throw new Error(`${file}: unexpected line at offset ${pos}`);
    }
    // Rows come grouped by patient: the map is consulted only when the patient changes.
    let p = last;
    if (c2 - c1 - 1 !== lastName.length || !text.startsWith(lastName, c1 + 1)) {
      lastName = text.slice(c1 + 1, c2);
      let i = index.get(lastName);
      if (i === undefined) {
        i = patients.length;
        index.set(lastName, i);
        patients.push({ patient: lastName, patches: 0, positives: 0, edgePatches: 0 });
      }
      p = last = i;
    }
    const agg = patients[p];
    agg.patches++;
    agg.positives += label;
    if (width < PATCH_SIZE || height < PATCH_SIZE) agg.edgePatches++;
    if (rows === starts.length) {
      starts = grow(starts);
      patientOf = grow(patientOf);
    }
    starts[rows] = pos;
    patientOf[rows] = p;
    rows++;
    pos = end + 1;
  }
  return { rows, starts: starts.subarray(0, rows), patientOf: patientOf.subarray(0, rows), patients };
}

function int(text: string, from: number, to: number): number {
  if (to <= from) return NaN;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}

function grow(a: Uint32Array): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}

/** Full rows for a few lines of the scanned manifest. */
function rowsAt(m: ScannedManifest, indices: readonly number[]): ManifestRow[] {
  const lines = indices.map((i) => {
    const s = m.starts[i];
    let e = m.text.indexOf('\n', s);
    if (e < 0) e = m.text.length;
    return m.text.slice(s, e);
  });
  return parseManifest(`${HEADER}\n${lines.join('\n')}\n`, m.file);
}

/** Drops the kept manifest (the panel closed). */
export function releaseDatasetCache(): void {
  manifestCache = undefined;
}

// ------------------------------------------------------------------------------------- split

interface SplitRead {
  settings: SplitSettings;
  patients: Record<SplitName, string[]>;
  leakage: NonNullable<DatasetView['leakage']>;
}

/**
 * split.json read leniently: a split whose patients overlap is shown (that is the point of the
 * check), not refused as readSplit does. A file that is not a split at all is a problem line.
 */
function readSplitLenient(file: string, manifestHash: string, problems: string[]): SplitRead | null {
  if (!existsSync(file)) return null;
  let v: Partial<SplitFile>;
  try {
    v = JSON.parse(readFileSync(file, 'utf8')) as Partial<SplitFile>;
  } catch (e) {
    problems.push(`${file} is not valid JSON (${(e as Error).message}): run "Split by Patient" again.`);
    return null;
  }
  const lists = v?.patients as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object' || !lists || !SPLIT_NAMES.every((s) => Array.isArray(lists[s]) && (lists[s] as unknown[]).every((p) => typeof p === 'string'))) {
    problems.push(`${file} is not a valid split file: run "Split by Patient" again.`);
    return null;
  }
  const patients = { train: lists.train as string[], val: lists.val as string[], test: lists.test as string[] };
  // The check itself: every patient in exactly one split.
  const where = new Map<string, SplitName[]>();
  for (const s of SPLIT_NAMES) {
    for (const p of patients[s]) {
      const w = where.get(p);
      if (w) w.push(s); else where.set(p, [s]);
    }
  }
  const overlapping = [...where].filter(([, s]) => s.length > 1).map(([p, s]) => `${p} (${s.join(', ')})`);
  let message: string;
  try {
    checkNoOverlap({ patients });
    const n = SPLIT_NAMES.map((s) => `${s} ${patients[s].length}`).join(', ');
    message = `No patient is in more than one split: ${where.size} patients checked (${n}).`;
  } catch (e) {
    message = isIdcError(e) ? e.message : String((e as Error)?.message ?? e);
  }
  const stale = typeof v.manifestHash === 'string' && v.manifestHash !== manifestHash;
  if (stale) problems.push('The split was made from an older manifest (organize ran again since): run "Split by Patient" again.');
  return {
    patients,
    leakage: { ok: overlapping.length === 0, overlapping, message },
    settings: {
      file,
      seed: typeof v.seed === 'number' ? v.seed : NaN,
      ratios: Array.isArray(v.ratios) && v.ratios.length === 3 ? (v.ratios as [number, number, number]) : [NaN, NaN, NaN],
      stratify: v.stratify === true,
      createdAt: typeof v.createdAt === 'string' ? v.createdAt : '',
      stale,
    },
  };
}

function readOrganizeBrief(file: string): OrganizeBrief | null {
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as {
      kind: 'dir' | 'zip'; createdAt: string;
      totals: { files: number; skipped: number; suspicious: number; duplicates: number };
      issues?: { reason: string }[];
    };
    const byReason = new Map<string, number>();
    for (const i of r.issues ?? []) byReason.set(i.reason, (byReason.get(i.reason) ?? 0) + 1);
    return {
      kind: r.kind, createdAt: r.createdAt,
      files: r.totals?.files ?? 0, skipped: r.totals?.skipped ?? 0, suspicious: r.totals?.suspicious ?? 0, duplicates: r.totals?.duplicates ?? 0,
      issues: [...byReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1)).slice(0, 12),
    };
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------- view

function emptyView(src: DatasetSources, manifest: string, problems: string[]): DatasetView {
  return {
    folder: src.folder, archive: src.archive, manifest, hasManifest: false,
    totals: { patients: 0, patches: 0, positives: 0, negatives: 0, edgePatches: 0 },
    splits: null, split: null, patients: [], leakage: null, organize: readOrganizeBrief(src.organizeReport ?? join(src.outputDir, ORGANIZE_REPORT_FILE)),
    sample: [], problems, unreadable: [],
  };
}

/** Everything the dataset panel shows. */
export async function buildDatasetView(src: DatasetSources, sample: SampleOptions = { count: SAMPLE_SIZE }): Promise<DatasetView> {
  const manifestFile = src.manifest ?? join(src.outputDir, MANIFEST_FILE);
  const problems: string[] = [];
  if (!existsSync(manifestFile)) {
    problems.push('No manifest yet: run "Organize Raw Archive" to scan the archive.');
    return emptyView(src, manifestFile, problems);
  }
  const m = loadManifest(manifestFile);
  const split = readSplitLenient(src.split ?? join(src.outputDir, SPLIT_FILE), m.hash, problems);
  const splitOf = splitMap(split);

  const stains = readStains(src.cacheDir ?? join(src.outputDir, 'cache'));
  const patients: DatasetPatient[] = m.patients
    .map((a) => {
      const p: DatasetPatient = { ...a, split: splitOf.get(a.patient) ?? ('unassigned' as const), positiveRate: a.patches ? a.positives / a.patches : 0 };
      const stain = stains.get(a.patient);
      if (stain) p.stain = stain;
      return p;
    })
    .sort((a, b) => comparePatientIds(a.patient, b.patient));
  const totals = { patients: patients.length, patches: m.rows, positives: 0, negatives: 0, edgePatches: 0 };
  const counts = new Map<SplitName, SplitCounts>(SPLIT_NAMES.map((s) => [s, { split: s, patients: 0, patches: 0, positives: 0, negatives: 0, positiveRate: 0 }]));
  let unassigned = 0;
  for (const p of patients) {
    totals.positives += p.positives;
    totals.edgePatches += p.edgePatches;
    if (p.split === 'unassigned') { unassigned++; continue; }
    const c = counts.get(p.split)!;
    c.patients++; c.patches += p.patches; c.positives += p.positives;
  }
  totals.negatives = totals.patches - totals.positives;
  for (const c of counts.values()) { c.negatives = c.patches - c.positives; c.positiveRate = c.patches ? c.positives / c.patches : 0; }

  if (split) {
    if (unassigned) problems.push(`${unassigned} patient${unassigned === 1 ? ' is' : 's are'} in the manifest but in no split: run "Split by Patient" again.`);
    const known = new Set(m.patients.map((p) => p.patient));
    const gone = [...splitOf.keys()].filter((p) => !known.has(p));
    if (gone.length) problems.push(`${gone.length} patient${gone.length === 1 ? '' : 's'} of the split ${gone.length === 1 ? 'is' : 'are'} not in the manifest (${gone.slice(0, 5).join(', ')}${gone.length > 5 ? ' …' : ''}): run "Split by Patient" again.`);
  }
  if (!src.archive || !existsSync(src.archive)) problems.push(`The archive ${src.archive || '(paths.archive)'} is not there: patch images cannot be shown.`);
  const unreadable = readUnreadable(src.cacheDir ?? join(src.outputDir, 'cache'), m.hash);
  if (unreadable.length) problems.push(`${unreadable.length} patch${unreadable.length === 1 ? '' : 'es'} could not be decoded into the patch cache and ${unreadable.length === 1 ? 'is' : 'are'} left out of training and evaluation (listed below): restore ${unreadable.length === 1 ? 'it' : 'them'}, or run "Organize Raw Archive" again.`);

  return {
    folder: src.folder, archive: src.archive, manifest: manifestFile, hasManifest: true,
    totals,
    splits: split ? SPLIT_NAMES.map((s) => counts.get(s)!) : null,
    split: split?.settings ?? null,
    patients,
    leakage: split?.leakage ?? null,
    organize: readOrganizeBrief(src.organizeReport ?? join(src.outputDir, ORGANIZE_REPORT_FILE)),
    sample: sample.count > 0 ? sampleFrom(m, splitOf, src, sample) : [],
    problems,
    unreadable,
  };
}

/**
 * The patches the patch cache could not decode, from cache.json read by the cache's own reader;
 * none without a cache or when it was built from another manifest (it says nothing about this one).
 */
function readUnreadable(cacheDir: string, manifestHash: string): CacheFailure[] {
  let m: CacheManifest;
  try { m = readCacheManifest(cacheDir); } catch { return []; }
  if (m.manifestHash !== manifestHash) return [];
  return SPLIT_NAMES.flatMap((s) => (Array.isArray(m.splits[s].failed) ? m.splits[s].failed : []))
    .filter((f) => f && typeof f.source === 'string' && typeof f.reason === 'string'); // hand-edited: skip
}

/**
 * Per patient, the stain estimate from `<cache>/<split>.stains.json` (written when training or
 * evaluation ran with data.stainNormalization "macenko"); empty when there is none. A damaged file
 * shows as no estimate: the panel is a view, training re-estimates.
 */
function readStains(cacheDir: string): Map<string, PatientStain> {
  const out = new Map<string, PatientStain>();
  for (const split of SPLIT_NAMES) {
    const file = join(cacheDir, stainsFile(split));
    if (!existsSync(file)) continue;
    let table: Partial<StainTable>;
    try { table = JSON.parse(readFileSync(file, 'utf8')) as Partial<StainTable>; } catch { continue; }
    for (const [patient, e] of Object.entries(table.patients ?? {})) {
      if (!e || typeof e !== 'object') continue; // hand-edited: nothing to show
      if ('estimate' in e) out.set(patient, { h: e.estimate.he[0], e: e.estimate.he[1], hAmount: e.estimate.maxC[0], eAmount: e.estimate.maxC[1] });
      else if (e.skipped) out.set(patient, { skipped: e.skipped });
    }
  }
  return out;
}

/** A random grid of patches (the panel's Reshuffle). */
export async function samplePatches(src: DatasetSources, opts: SampleOptions): Promise<PatchTile[]> {
  const manifestFile = src.manifest ?? join(src.outputDir, MANIFEST_FILE);
  if (!existsSync(manifestFile)) return [];
  const m = loadManifest(manifestFile);
  return sampleFrom(m, splitMap(readSplitLenient(src.split ?? join(src.outputDir, SPLIT_FILE), m.hash, [])), src, opts);
}

/** Patient -> split (the first one listed when a patient leaks into several). */
function splitMap(split: SplitRead | null): Map<string, SplitName> {
  const splitOf = new Map<string, SplitName>();
  if (split) for (const s of SPLIT_NAMES) for (const p of split.patients[s]) if (!splitOf.has(p)) splitOf.set(p, s);
  return splitOf;
}

function sampleFrom(m: ScannedManifest, splitOf: Map<string, SplitName>, src: DatasetSources, opts: SampleOptions): PatchTile[] {
  const rng = new Rng(opts.seed ?? Math.floor(Math.random() * 2 ** 32));
  let pool: number[] | undefined;
  if (opts.split) {
    const inSplit = m.patients.map((p) => splitOf.get(p.patient) === opts.split);
    pool = [];
    for (let i = 0; i < m.rows; i++) if (inSplit[m.patientOf[i]]) pool.push(i);
  }
  const n = pool ? pool.length : m.rows;
  const want = Math.min(opts.count, n);
  // Distinct random picks: rejection while want << n, a partial shuffle otherwise.
  const picked = new Set<number>();
  if (want * 3 < n) {
    while (picked.size < want) picked.add(rng.int(0, n - 1));
  } else {
    const all = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < want; i++) {
      const j = rng.int(i, n - 1);
      [all[i], all[j]] = [all[j], all[i]];
      picked.add(all[i]);
    }
  }
  const chosen = rowsAt(m, [...picked].map((k) => (pool ? pool[k] : k)));
  const images = src.archive && existsSync(src.archive) ? patchImagePaths(chosen, src.archive, src.outputDir) : chosen.map(() => null);
  const tiles: PatchTile[] = [];
  chosen.forEach((r, k) => {
    const image = images[k];
    if (image) tiles.push({ id: r.id, patient: r.patient, x: r.x, y: r.y, label: r.label, split: splitOf.get(r.patient), image });
  });
  return tiles;
}

/** Numeric ids in numeric order (the archive's ids are numbers), anything else by code unit. */
function comparePatientIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b) && a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
