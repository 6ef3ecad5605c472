/**
 * Error gallery view model: pages of one confusion-matrix cell at a threshold, most wrong first,
 * with each patch's image file and its Grad-CAM overlay when evaluate wrote one. predictions.csv is
 * parsed once per change (threshold.ts loadEvaluation), each cell's order is sorted once per
 * (threshold, patient) and kept, and the manifest (for patch sources) is read once per change.
 * Pure file reading: no TF.js, no `vscode`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cellOrder, type ErrorKind } from '../evaluate/predictions';
import { parseManifest } from '../manifest';
import { patchImagePaths, patchSourceOf } from './patch-images';
import { loadEvaluation, pickEvaluation, type EvaluationSource } from './threshold';
import type { GalleryItem, GalleryPage, GalleryPatientCounts } from './types';
import { fileVersionKey } from '../fsutil';

/** organize's MANIFEST_FILE (not imported: organize.ts would pull its worker pool into the extension bundle). */
const MANIFEST_FILE = 'manifest.csv';

export const GALLERY_CELLS: readonly ErrorKind[] = ['fn', 'fp', 'tp', 'tn'];

export interface GalleryQuery {
  cell: ErrorKind;
  /** Default: `working`. */
  threshold?: number;
  offset: number;
  limit: number;
  patient?: string;
}

export interface GalleryContext {
  outputDir: string;
  /** The archive (folder or .zip) the manifest's sources are relative to. */
  archive: string;
  evaluations: readonly EvaluationSource[];
  /** `<model>/<split>`; default: the newest. */
  evaluation?: string;
  /** evaluate.threshold now; default: the one the evaluation ran with. */
  working?: number;
}

/** `<evaluation>/gradcam/<id>.png`, as src/core/evaluate/visuals.ts writeGradCams names them. */
export function gradCamPath(dir: string, id: string): string {
  return join(dir, 'gradcam', `${id}.png`);
}

const manifests = new Map<string, { key: string; sources: Map<string, string> }>();

/** id -> archive source of every patch in the manifest (cached while manifest.csv is unchanged). */
export function manifestSources(outputDir: string): Map<string, string> {
  const file = join(outputDir, MANIFEST_FILE);
  const key = fileVersionKey(file);
  if (!key) return new Map();
  const hit = manifests.get(file);
  if (hit && hit.key === key) return hit.sources;
  const sources = new Map<string, string>();
  for (const r of parseManifest(readFileSync(file, 'utf8'), file)) sources.set(r.id, r.source);
  manifests.set(file, { key, sources });
  return sources;
}

/** Sorted cell order, memoised per evaluation (the memo is dropped when the files change). */
const MEMO_ORDERS = 12;
function orderOf(ev: ReturnType<typeof loadEvaluation>, cell: ErrorKind, threshold: number, patient?: string): Uint32Array {
  const key = `order|${cell}|${threshold}|${patient ?? ''}`;
  const hit = ev.memo.get(key) as Uint32Array | undefined;
  if (hit) {
    // Most recently used last.
    ev.memo.delete(key);
    ev.memo.set(key, hit);
    return hit;
  }
  const order = cellOrder(ev.predictions, cell, threshold, patient ? (r) => r.patient === patient : undefined);
  ev.memo.set(key, order);
  const keys = [...ev.memo.keys()].filter((k) => k.startsWith('order|'));
  if (keys.length > MEMO_ORDERS) ev.memo.delete(keys[0]);
  return order;
}

/**
 * One page of a cell. Null when the output folder has no evaluation. Items beyond the cell's end
 * are simply absent (offset past the end gives an empty page).
 */
export function buildGalleryPage(ctx: GalleryContext, q: GalleryQuery): GalleryPage | null {
  const picked = pickEvaluation(ctx.evaluations, ctx.evaluation);
  if (!picked) return null;
  const ev = loadEvaluation(picked.source);
  const working = ctx.working ?? ev.report.threshold;
  const threshold = q.threshold ?? working;
  const patient = q.patient || undefined;

  const totals = { fn: 0, fp: 0, tp: 0, tn: 0 };
  const perPatient = new Map<string, GalleryPatientCounts>();
  const wantPatients = q.offset === 0;
  for (const r of ev.predictions) {
    const pos = r.score >= threshold;
    const cell: ErrorKind = r.label === 1 ? (pos ? 'tp' : 'fn') : pos ? 'fp' : 'tn';
    if (!patient || r.patient === patient) totals[cell]++;
    if (wantPatients) {
      let c = perPatient.get(r.patient);
      if (!c) perPatient.set(r.patient, (c = { patient: r.patient, fn: 0, fp: 0, tp: 0, tn: 0 }));
      c[cell]++;
    }
  }

  const order = orderOf(ev, q.cell, threshold, patient);
  const slice = order.subarray(q.offset, q.offset + q.limit);
  const rows = Array.from(slice, (i) => ev.predictions[i]);
  const data = patchSourceOf(ev.report, ctx.outputDir, ctx.archive);
  const sources = manifestSources(data.dataDir);
  const known = rows.map((r) => ({ id: r.id, source: sources.get(r.id) ?? '' }));
  const withSource = known.filter((k) => k.source);
  const paths = withSource.length && data.archive ? patchImagePaths(withSource, data.archive, data.dataDir, { copy: data.copy }) : [];
  const image = new Map<string, string | null>(withSource.map((k, i) => [k.id, paths[i]]));
  const items: GalleryItem[] = rows.map((r) => {
    const cam = gradCamPath(ev.dir, r.id);
    const item: GalleryItem = { id: r.id, patient: r.patient, x: r.x, y: r.y, label: r.label!, score: r.score, image: image.get(r.id) ?? null };
    if (existsSync(cam)) item.gradcam = cam;
    return item;
  });

  let gradcams = 0;
  try { gradcams = readdirSync(join(ev.dir, 'gradcam')).filter((f) => f.endsWith('.png')).length; } catch { /* none */ }

  const page: GalleryPage = {
    evaluation: ev.id, cell: q.cell, threshold, working, total: order.length, totals, offset: q.offset, items, gradcams,
  };
  if (wantPatients) page.patients = [...perPatient.values()].sort((a, b) => b.fn + b.fp - (a.fn + a.fp) || (a.patient < b.patient ? -1 : 1));
  return page;
}

/** Existing Grad-CAM overlays of these patches (null where evaluate wrote none). */
export function gradCamPaths(ctx: Pick<GalleryContext, 'evaluations' | 'evaluation'>, ids: readonly string[]): Record<string, string | null> {
  const picked = pickEvaluation(ctx.evaluations, ctx.evaluation);
  const out: Record<string, string | null> = {};
  for (const id of ids) {
    const p = picked ? gradCamPath(picked.source.dir, id) : '';
    out[id] = p && /^[\w.-]+$/.test(id) && existsSync(p) ? p : null;
  }
  return out;
}

/**
 * Where one patch sits in the gallery at `threshold`: its cell and its index in that cell's order
 * (after the patient filter, which is dropped when the patch belongs to another patient). Null
 * when the evaluation has no such labelled patch.
 */
export function locateInGallery(ctx: Pick<GalleryContext, 'evaluations' | 'evaluation'>, id: string, thresholdOrDefault: number | undefined, patient?: string): { cell: ErrorKind; index: number; patient?: string } | null {
  const picked = pickEvaluation(ctx.evaluations, ctx.evaluation);
  if (!picked) return null;
  const ev = loadEvaluation(picked.source);
  const threshold = thresholdOrDefault ?? ev.report.threshold;
  const row = ev.predictions.find((p) => p.id === id);
  if (!row) return null;
  const pos = row.score >= threshold;
  const cell: ErrorKind = row.label === 1 ? (pos ? 'tp' : 'fn') : pos ? 'fp' : 'tn';
  const keep = patient && patient === row.patient ? patient : undefined;
  const order = orderOf(ev, cell, threshold, keep);
  const k = order.findIndex((i) => ev.predictions[i].id === id);
  return { cell, index: k, patient: keep };
}
