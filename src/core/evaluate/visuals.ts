import type * as tfl from '@tensorflow/tfjs-layers';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil';
import { cancellationPoint } from '../errors';
import { PATCH_BYTES } from '../cache/pixels';
import { gradCam, gradCamOverlayPng, slideMap, type SlideTile } from '../visual';
import type { ErrorItem, Prediction } from './types';

/** Pixels for any patch of the evaluated set, by id (cache rows or decoded files). */
export type PixelSource = (ids: readonly string[]) => Uint8Array;

/**
 * Grad-CAM overlays (PNG, 200 px) for the given error patches: `<dir>/gradcam/<id>.png`, drawn over
 * `pixels`; the model reads `opts.input` (stain-normalized patches) when given, else `pixels`.
 */
export async function writeGradCams(model: tfl.LayersModel | readonly tfl.LayersModel[], items: readonly ErrorItem[], pixels: PixelSource, dir: string, opts: { scale?: (x: Float32Array) => Float32Array; input?: PixelSource; signal?: AbortSignal } = {}): Promise<number> {
  if (items.length === 0) return 0;
  await cancellationPoint(opts.signal);
  const ids = items.map((i) => i.id);
  const px = pixels(ids);
  const input = opts.input ? opts.input(ids) : px;
  // An ensemble's overlay is its members' mean map, as its score is their mean probability.
  const models = Array.isArray(model) ? model : [model as tfl.LayersModel];
  const maps = await gradCam(models[0], input, items.length, { scale: opts.scale, signal: opts.signal });
  for (const other of models.slice(1)) {
    const more = await gradCam(other, input, items.length, { scale: opts.scale, signal: opts.signal });
    maps.forEach((m, k) => { for (let i = 0; i < m.length; i++) m[i] += more[k][i]; });
  }
  if (models.length > 1) for (const m of maps) for (let i = 0; i < m.length; i++) m[i] /= models.length;
  for (let k = 0; k < items.length; k++) {
    // Each overlay is a whole file (atomic): a cancel leaves some, and the gallery draws the others on demand.
    await cancellationPoint(opts.signal);
    const png = await gradCamOverlayPng(px.subarray(k * PATCH_BYTES, (k + 1) * PATCH_BYTES), maps[k]);
    await writeFileAtomic(join(dir, 'gradcam', `${items[k].id}.png`), png);
  }
  return items.length;
}

/** One slide map per patient: `<dir>/slidemaps/<patient>.png`; returns the files written. */
export async function writeSlideMaps(predictions: readonly Prediction[], patients: readonly string[], pixels: PixelSource, dir: string, threshold: number, signal?: AbortSignal): Promise<string[]> {
  const files: string[] = [];
  for (const patient of patients) {
    await cancellationPoint(signal);
    const rows = predictions.filter((p) => p.patient === patient);
    if (rows.length === 0) continue;
    const px = pixels(rows.map((r) => r.id));
    const tiles: SlideTile[] = rows.map((r, k) => ({ id: r.id, x: r.x, y: r.y, label: r.label, score: r.score, pixels: px.subarray(k * PATCH_BYTES, (k + 1) * PATCH_BYTES) }));
    const map = await slideMap(tiles, { threshold });
    const file = join(dir, 'slidemaps', `${patient}.png`);
    await writeFileAtomic(file, map.png);
    files.push(file);
  }
  return files;
}
