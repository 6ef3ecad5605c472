import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cancellationPoint } from '../errors';
import { writeJsonAtomic } from '../fsutil';
import { noProgress, throttled, type ProgressSink } from '../progress';
import type { SplitName } from '../split';
import { stainsFile, type SplitCacheMeta } from './format';
import { PATCH_BYTES } from './pixels';
import { applyOdMatrix, estimateStains, MACENKO_REFERENCE, MIN_TISSUE_PIXELS, normalizationMatrix, type StainEstimate } from './stain-norm';

export type StainNormalization = 'none' | 'macenko';

/** One slide's normalization, or why it has none (its pixels are then used as they are). */
export type StainEntry = { estimate: StainEstimate; matrix: number[] } | { skipped: string };

/** `<split>.stains.json`: per patient, the map onto the reference stains. */
export interface StainTable {
  /** 2: estimates sample the same pixel positions in every patch (1: in the split's row order). */
  version: 2;
  method: 'macenko';
  /** The split cache's key: a table of other rows is recomputed. */
  key: string;
  reference: StainEstimate;
  patients: Record<string, StainEntry>;
}

/** The patient of a patch id (`<pid>_idx5_x.._y.._class.`). */
export function patientOfId(id: string): string {
  const i = id.indexOf('_');
  return i < 0 ? id : id.slice(0, i);
}

/** Estimates one slide's normalization from its patches (RGB uint8, NHWC). */
export function stainEntry(pixels: Uint8Array): StainEntry {
  const estimate = estimateStains(pixels);
  if (!estimate) return { skipped: `too little tissue or a single colour (needs ${MIN_TISSUE_PIXELS} tissue pixels spanning two stains)` };
  return { estimate, matrix: normalizationMatrix(estimate, MACENKO_REFERENCE) };
}

/** Normalizes patches in place, each with its own patient's map; patients without one stay as they are. */
export function applyStainTable(pixels: Uint8Array, patients: readonly string[], table: Pick<StainTable, 'patients'>): void {
  for (let k = 0; k < patients.length; k++) {
    const e = table.patients[patients[k]];
    if (e && 'matrix' in e) applyOdMatrix(pixels, e.matrix, k * (PATCH_BYTES / 3), PATCH_BYTES / 3);
  }
}

/** Per-patient tables for patches held in memory (idc predict on a folder). */
export function stainTableOf(pixels: Uint8Array, patients: readonly string[]): Pick<StainTable, 'patients'> {
  const rows = groupRows(patients);
  const out: Record<string, StainEntry> = {};
  for (const [p, idx] of rows) {
    const px = new Uint8Array(idx.length * PATCH_BYTES);
    idx.forEach((r, k) => px.set(pixels.subarray(r * PATCH_BYTES, (r + 1) * PATCH_BYTES), k * PATCH_BYTES));
    out[p] = stainEntry(px);
  }
  return { patients: out };
}

export interface RawRows {
  ids: readonly string[];
  readBatch(indices: ArrayLike<number>): Uint8Array;
}

/**
 * The split's stain table: read from `<split>.stains.json` when it belongs to these rows, else
 * estimated patient by patient from the cached (raw) pixels and written atomically.
 */
export async function ensureStainTable(cacheDir: string, split: SplitName, meta: SplitCacheMeta, rows: () => RawRows, opts: { onProgress?: ProgressSink; signal?: AbortSignal } = {}): Promise<StainTable> {
  const file = join(cacheDir, stainsFile(split));
  if (existsSync(file)) {
    try {
      const t = JSON.parse(readFileSync(file, 'utf8')) as StainTable;
      if (t.version === 2 && t.method === 'macenko' && t.key === meta.key && t.patients) return t;
    } catch { /* damaged: estimate again */ }
  }
  const src = rows();
  const groups = groupRows(src.ids.map(patientOfId));
  const tick = throttled(opts.onProgress ?? noProgress, 250);
  const label = `Estimating ${split} stains (Macenko, per patient)`;
  const table: StainTable = { version: 2, method: 'macenko', key: meta.key, reference: MACENKO_REFERENCE, patients: {} };
  let done = 0;
  for (const [p, idx] of groups) {
    await cancellationPoint(opts.signal);
    tick({ phase: 'cache.stains', label, done, total: groups.size, unit: 'patients' });
    table.patients[p] = stainEntry(src.readBatch(idx));
    done++;
  }
  tick({ phase: 'cache.stains', label, done, total: groups.size, unit: 'patients' });
  await writeJsonAtomic(file, table);
  return table;
}

function groupRows(patients: readonly string[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  patients.forEach((p, i) => {
    let a = m.get(p);
    if (!a) m.set(p, (a = []));
    a.push(i);
  });
  return m;
}
