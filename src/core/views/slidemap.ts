/**
 * The slide-map panel's view model: one patient's slide rebuilt from its patches, as three PNG
 * layers the page stacks (tissue, ground-truth contour, probability tint), plus every tile's
 * rectangle, label and score so the page draws FN/FP outlines at any threshold and maps the
 * pointer to a patch. Pure Node: no `vscode`, no TF.js, no sharp (the PNGs are encoded here with
 * node:zlib, so the extension host never loads a native module for them).
 *
 * Layers are drawn by src/core/visual/slidemap.ts (renderSlideRgb) and written once per patient
 * under `<evaluation>/slidemaps/layers/`; they are reused while newer than predictions.csv.
 * Pixels come from the patch cache (read-only) or, where it lacks a patch, from the patch PNGs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { IdcError } from '../errors';
import { writeFileAtomic, fileVersionKey, readRegularFileSync } from '../fsutil';
import { readPredictions } from '../evaluate/predictions';
import type { EvalReport, Prediction } from '../evaluate/types';
import { perPatient } from '../metrics/patients';
import { renderSlideRgb, SLIDE_COLOURS, type SlideLayer, type SlideTile } from '../visual/slidemap';
import { openCache } from '../cache/reader';
import { PATCH_BYTES, decodeRgb, placePatch } from '../cache/pixels';
import { readManifest } from '../manifest';
import { SPLIT_NAMES, type SplitName } from '../split';
import { patchImagePaths, patchSourceOf } from './patch-images';
import type { SlideMapView, SlidePatientRow, SlideTileView } from './types';

export interface SlideMapSources {
  /** `<model>/<split>`. */
  evaluation: string;
  /** The evaluation's folder (metrics.json, predictions.csv). */
  dir: string;
  /** Other evaluations to offer in the picker. */
  evaluations?: string[];
  outputDir: string;
  archive: string;
  /** The patch cache (data.cacheDir); default <outputDir>/cache. */
  cacheDir?: string;
  /** Default <outputDir>/manifest.csv (only read when the cache lacks a patch). */
  manifest?: string;
}

export interface SlideMapRequest {
  /** Default: the worst patient at the threshold. */
  patient?: string;
  /** Default: the evaluation's working threshold. */
  threshold?: number;
}

/** Width budget of a slide image (as the evaluation's own slide maps). */
export const SLIDE_MAX_WIDTH = 2000;
const LAYERS_VERSION = 1;

/** Where a patient's layers go. */
export function slideLayerFiles(dir: string, patient: string): { tissue: string; truth: string; probability: string; meta: string } {
  const base = join(dir, 'slidemaps', 'layers', patient.replace(/[^\w.-]/g, '_'));
  return { tissue: `${base}-tissue.png`, truth: `${base}-truth.png`, probability: `${base}-probability.png`, meta: `${base}.json` };
}

// ------------------------------------------------------------------------------------- reading

interface LoadedPredictions { key: string; rows: Prediction[]; byPatient: Map<string, Prediction[]> }
const predictionCache = new Map<string, LoadedPredictions>();

function loadPredictions(file: string): LoadedPredictions {
  const key = fileVersionKey(file);
  const hit = predictionCache.get(file);
  if (hit && key && hit.key === key) return hit;
  const rows = readPredictions(file);
  const byPatient = new Map<string, Prediction[]>();
  for (const r of rows) {
    const list = byPatient.get(r.patient);
    if (list) list.push(r); else byPatient.set(r.patient, [r]);
  }
  const loaded = { key: key ?? '', rows, byPatient };
  // One evaluation at a time is what a panel shows.
  predictionCache.clear();
  predictionCache.set(file, loaded);
  return loaded;
}

/** Drops the kept predictions (the panel closed). */
export function releaseSlideMapCache(): void {
  predictionCache.clear();
  manifestRows = undefined;
}

function readReport(file: string): EvalReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new IdcError(`No metrics at ${file}.`, 'Run "Evaluate Model" first.', 'NO_METRICS');
  }
  try {
    return JSON.parse(text) as EvalReport;
  } catch (e) {
    throw new IdcError(`${file} is not valid JSON (${(e as Error).message}).`, 'Run "Evaluate Model" again.', 'BAD_METRICS');
  }
}

// ------------------------------------------------------------------------------------- view

/** What the slide-map panel shows for one patient of one evaluation (renders the layers if needed). */
export async function buildSlideMapView(src: SlideMapSources, req: SlideMapRequest = {}): Promise<SlideMapView> {
  const report = readReport(join(src.dir, 'metrics.json'));
  // An external archive's patches: its own cache, manifest and archive.
  const data = patchSourceOf(report, src.outputDir, src.archive);
  if (data.copy) src = { ...src, outputDir: data.dataDir, archive: data.archive, cacheDir: join(data.dataDir, 'cache'), manifest: undefined };
  const predictionsFile = join(src.dir, 'predictions.csv');
  const { rows, byPatient } = loadPredictions(predictionsFile);
  if (rows.length === 0) throw new IdcError(`${predictionsFile} has no predictions.`, 'Run "Evaluate Model" again.', 'NO_PREDICTIONS');
  const working = Number.isFinite(report.threshold) ? report.threshold : 0.5;
  const threshold = req.threshold ?? working;
  const warnings: string[] = [];
  if (rows.some((r) => r.label === undefined)) warnings.push('Some patches have no ground-truth label: they count as IDC(−) here.');

  const patients: SlidePatientRow[] = perPatient(rows.map((r) => ({ patient: r.patient, label: r.label ?? 0, score: r.score })), threshold)
    .map((p) => ({ patient: p.patient, patches: p.n, positives: p.positives, fn: p.falseNegatives, fp: p.falsePositives, recall: p.recall, auc: p.auc }));
  let patient = req.patient ?? patients[0].patient;
  if (!byPatient.has(patient)) {
    warnings.push(`Patient ${patient} is not in this evaluation; showing ${patients[0].patient}.`);
    patient = patients[0].patient;
  }
  const preds = byPatient.get(patient)!;
  const layers = await patientLayers(src, report.split, preds, predictionsFile);
  if (layers.missing) warnings.push(`${layers.missing} of ${preds.length} patches could not be read (drawn grey): rebuild the patch cache or check the archive.`);

  const rect = new Map(layers.rects.map((r) => [r.id, r]));
  const tiles: SlideTileView[] = preds.map((p) => {
    const r = rect.get(p.id)!;
    return { id: p.id, x: p.x, y: p.y, label: p.label === 1 ? 1 : 0, score: p.score, left: r.left, top: r.top, size: r.size };
  });
  return {
    evaluation: src.evaluation,
    evaluations: src.evaluations ?? [src.evaluation],
    patients, patient, threshold, workingThreshold: working,
    width: layers.width, height: layers.height, scale: layers.scale,
    layers: { tissue: layers.files.tissue, truth: layers.files.truth, probability: layers.files.probability },
    colours: { falseNegative: SLIDE_COLOURS.falseNegative, falsePositive: SLIDE_COLOURS.falsePositive, truth: SLIDE_COLOURS.truth, noTissue: SLIDE_COLOURS.noTissue },
    layersVersion: Math.round(statSync(layers.files.meta).mtimeMs),
    pixelSource: layers.source, missingPixels: layers.missing,
    tiles, warnings: [...warnings, ...(report.warnings ?? [])],
  };
}

interface LayerMeta {
  version: number;
  patient: string;
  width: number;
  height: number;
  scale: number;
  source: 'cache' | 'files' | 'mixed';
  missing: number;
  rects: { id: string; left: number; top: number; size: number }[];
}

/** The patient's three layers and tile rectangles: reused while newer than predictions.csv, else drawn now. */
async function patientLayers(src: SlideMapSources, split: SplitName, preds: readonly Prediction[], predictionsFile: string): Promise<LayerMeta & { files: ReturnType<typeof slideLayerFiles> }> {
  const files = slideLayerFiles(src.dir, preds[0].patient);
  const since = statSync(predictionsFile).mtimeMs;
  const fresh = (f: string) => { try { return statSync(f).mtimeMs >= since; } catch { return false; } };
  if (fresh(files.meta) && existsSync(files.tissue) && existsSync(files.truth) && existsSync(files.probability)) {
    try {
      const meta = JSON.parse(readFileSync(files.meta, 'utf8')) as LayerMeta;
      if (meta.version === LAYERS_VERSION && meta.rects.length === preds.length && preds.every((p, i) => meta.rects[i].id === p.id)) return { ...meta, files };
    } catch {
      // Redraw below.
    }
  }
  const px = await readPixels(src, split, preds);
  const tiles: SlideTile[] = preds.map((p, k) => ({ id: p.id, x: p.x, y: p.y, label: p.label, score: p.score, pixels: px.pixels.subarray(k * PATCH_BYTES, (k + 1) * PATCH_BYTES) }));
  const draw = (layer: SlideLayer) => renderSlideRgb(tiles, { threshold: 0.5, layers: [layer], legend: false, maxWidth: SLIDE_MAX_WIDTH });
  const tissue = draw('tissue');
  const { width, height, tileRects } = tissue;
  // Inside the tiles opaque, outside transparent (the page's background shows through).
  const inside = new Uint8Array(width * height);
  for (const r of tileRects) for (let y = r.top; y < r.top + r.size; y++) inside.fill(1, y * width + r.left, y * width + r.left + r.size);
  const truth = draw('truth');
  const probability = draw('probability');
  const [tr, tg, tb] = SLIDE_COLOURS.truth;
  await writeFileAtomic(files.tissue, encodePng(toRgba(tissue.rgb, (i) => inside[i] === 1), width, height));
  await writeFileAtomic(files.truth, encodePng(toRgba(truth.rgb, (i, r, g, b) => inside[i] === 1 && r === tr && g === tg && b === tb), width, height));
  await writeFileAtomic(files.probability, encodePng(toRgba(probability.rgb, (i) => inside[i] === 1), width, height));
  const meta: LayerMeta = {
    version: LAYERS_VERSION, patient: preds[0].patient, width, height, scale: tissue.scale, source: px.source, missing: px.missing,
    rects: tileRects.map((r) => ({ id: r.id, left: r.left, top: r.top, size: r.size })),
  };
  // Written last: its presence (newer than predictions.csv) means the PNGs are complete.
  await writeFileAtomic(files.meta, JSON.stringify(meta));
  return { ...meta, files };
}

function toRgba(rgb: Uint8Array, opaque: (i: number, r: number, g: number, b: number) => boolean): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(n * 4);
  for (let i = 0, s = 0, d = 0; i < n; i++, s += 3, d += 4) {
    const r = rgb[s], g = rgb[s + 1], b = rgb[s + 2];
    if (!opaque(i, r, g, b)) continue;
    out[d] = r; out[d + 1] = g; out[d + 2] = b; out[d + 3] = 255;
  }
  return out;
}

// ------------------------------------------------------------------------------------- pixels

/**
 * 50x50x3 pixels per prediction, in order: from the patch cache (the evaluation's split first,
 * then the others), and for what the cache lacks, decoded from the patch PNGs. Unreadable
 * patches stay a neutral grey.
 */
export async function readPixels(src: SlideMapSources, split: SplitName, preds: readonly Pick<Prediction, 'id'>[]): Promise<{ pixels: Uint8Array; source: 'cache' | 'files' | 'mixed'; missing: number }> {
  const pixels = new Uint8Array(preds.length * PATCH_BYTES).fill(200);
  const todo = new Map<string, number[]>();
  preds.forEach((p, k) => {
    const list = todo.get(p.id);
    if (list) list.push(k); else todo.set(p.id, [k]);
  });
  let fromCache = 0;
  const cacheDir = src.cacheDir ?? join(src.outputDir, 'cache');
  if (existsSync(join(cacheDir, 'cache.json'))) {
    for (const s of [split, ...SPLIT_NAMES.filter((n) => n !== split)]) {
      if (!todo.size) break;
      let reader;
      try {
        reader = openCache(cacheDir, s, { memory: false });
      } catch {
        break;
      }
      try {
        const ids = reader.ids;
        const want: number[] = [];
        const slots: number[][] = [];
        for (let row = 0; row < ids.length; row++) {
          const ks = todo.get(ids[row]);
          if (!ks) continue;
          want.push(row);
          slots.push(ks);
          todo.delete(ids[row]);
        }
        if (!want.length) continue;
        const got = reader.readBatch(want);
        want.forEach((_, j) => {
          for (const k of slots[j]) pixels.set(got.subarray(j * PATCH_BYTES, (j + 1) * PATCH_BYTES), k * PATCH_BYTES);
          fromCache += slots[j].length;
        });
      } catch {
        // A damaged or rebuilt cache: fall back to the files for the rest.
      } finally {
        reader.close();
      }
    }
  }
  let fromFiles = 0;
  if (todo.size && existsSync(src.archive)) {
    const manifest = src.manifest ?? join(src.outputDir, 'manifest.csv');
    let rows: { id: string; source: string }[] = [];
    try {
      const sources = existsSync(manifest) ? await manifestSources(manifest) : new Map<string, string>();
      for (const id of todo.keys()) {
        const source = sources.get(id);
        if (source) rows.push({ id, source });
      }
    } catch {
      rows = [];
    }
    const paths = rows.length ? patchImagePaths(rows, src.archive, src.outputDir) : [];
    rows.forEach((r, j) => {
      const file = paths[j];
      if (!file) return;
      try {
        const img = decodeRgb(readRegularFileSync(file));
        const ks = todo.get(r.id)!;
        for (const k of ks) placePatch(img, 'pad', pixels, k * PATCH_BYTES);
        fromFiles += ks.length;
        todo.delete(r.id);
      } catch {
        // Left grey and counted as missing.
      }
    });
  }
  const missing = preds.length - fromCache - fromFiles;
  return { pixels, source: fromFiles === 0 ? 'cache' : fromCache === 0 ? 'files' : 'mixed', missing };
}

let manifestRows: { key: string; file: string; byId: Map<string, string> } | undefined;

/** id -> source of the manifest, for the file fallback (kept until the file changes). */
async function manifestSources(file: string): Promise<Map<string, string>> {
  const key = fileVersionKey(file) ?? '';
  if (manifestRows && manifestRows.file === file && manifestRows.key === key) return manifestRows.byId;
  const byId = new Map((await readManifest(file)).map((r) => [r.id, r.source]));
  manifestRows = { key, file, byId };
  return byId;
}

// ------------------------------------------------------------------------------------- PNG

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(parts: readonly Uint8Array[]): number {
  let c = 0xffffffff;
  for (const b of parts) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([head.subarray(4), data]), 0);
  return Buffer.concat([head, data, crc]);
}

/** 8-bit RGBA PNG (filter Sub on every row; zlib level 3: fast, and flat overlays shrink to almost nothing). */
export function encodePng(rgba: Uint8Array, width: number, height: number): Buffer {
  if (rgba.length !== width * height * 4) throw new Error(`encodePng: ${rgba.length} bytes for ${width}x${height} RGBA`);
  const stride = width * 4;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const s = y * stride;
    raw[o] = 1;
    for (let i = 0; i < 4 && i < stride; i++) raw[o + 1 + i] = rgba[s + i];
    for (let i = 4; i < stride; i++) raw[o + 1 + i] = (rgba[s + i] - rgba[s + i - 4]) & 0xff;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 3 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
