import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DUPLICATE_TREE_DIR, PATCH_SIZE, patchFileName, type Label } from '../naming';
import { buildSlide, cellCoord, countSlide, patientRng, type PatientSpec, type SlideCounts } from './slide';
import { SlideRenderer } from './texture';
import { encodeRgbPng } from './png';

/** One patient's work; plain data so it can cross to a worker thread. */
export interface PatientJob {
  seed: number;
  spec: PatientSpec;
  mode: 'folder' | 'zip';
  /** Folder mode: the archive root the files go under. */
  out: string;
  duplicateTree: boolean;
}

export interface PatientJobResult {
  index: number;
  counts: SlideCounts;
  /** Folder mode: files written and their bytes (duplicates included). */
  files: number;
  bytes: number;
  /** Zip mode: the PNGs back to back, with names relative to a tree root (`<pid>/<label>/<file>`). */
  blob?: Uint8Array;
  names?: string[];
  sizes?: number[];
  crcs?: number[];
}

/** How often (in patches) progress is reported; also where an in-thread run can be cancelled. */
export const TICK = 64;

/**
 * Renders, encodes and (folder mode) writes one patient. Everything random comes from
 * (seed, patient index), so the bytes do not depend on which thread runs it or in what order.
 */
export function runPatientJob(job: PatientJob, onTick?: (patches: number) => void): PatientJobResult {
  const { seed, spec } = job;
  const slide = buildSlide(seed, spec);
  const prng = patientRng(seed, spec.index);
  const renderer = new SlideRenderer(slide, prng.fork('tables'));
  const rng = prng.fork('render');
  const scan = new Uint8Array(PATCH_SIZE * (1 + 3 * PATCH_SIZE));
  const pid = spec.patient;
  const n = slide.cellLabel.length;
  const result: PatientJobResult = { index: spec.index, counts: countSlide(slide), files: 0, bytes: 0 };

  const dirs: string[] = [];
  if (job.mode === 'folder') {
    for (const label of ['0', '1']) {
      dirs.push(join(job.out, pid, label));
      if (job.duplicateTree) dirs.push(join(job.out, DUPLICATE_TREE_DIR, pid, label));
    }
    for (const d of dirs) mkdirSync(d, { recursive: true });
  }
  const pngs: Buffer[] = [];
  const names: string[] = [];
  const crcs: number[] = [];

  let sinceTick = 0;
  for (let j = 0; j < n; j++) {
    const len = renderer.render(j, rng, scan);
    const png = encodeRgbPng(scan.subarray(0, len), slide.cellW[j], slide.cellH[j]);
    const label = slide.cellLabel[j] as Label;
    const name = patchFileName(pid, cellCoord(slide.cellCol[j]), cellCoord(slide.cellRow[j]), label);
    if (job.mode === 'folder') {
      writeFileSync(join(job.out, pid, String(label), name), png);
      result.files++;
      result.bytes += png.length;
      if (job.duplicateTree) {
        writeFileSync(join(job.out, DUPLICATE_TREE_DIR, pid, String(label), name), png);
        result.files++;
        result.bytes += png.length;
      }
    } else {
      pngs.push(png);
      names.push(`${pid}/${label}/${name}`);
      crcs.push(crc32(png));
    }
    if (++sinceTick === TICK) {
      onTick?.(sinceTick);
      sinceTick = 0;
    }
  }
  if (sinceTick > 0) onTick?.(sinceTick);

  if (job.mode === 'zip') {
    // One transferable buffer instead of thousands of small messages.
    const total = pngs.reduce((s, b) => s + b.length, 0);
    const blob = new Uint8Array(total);
    let o = 0;
    for (const b of pngs) {
      blob.set(b, o);
      o += b.length;
    }
    result.blob = blob;
    result.names = names;
    result.sizes = pngs.map((b) => b.length);
    result.crcs = crcs;
  }
  return result;
}
