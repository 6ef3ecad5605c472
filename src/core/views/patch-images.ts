import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readZipDirectory } from '../cache/zip-directory';
import { packSlot, readZipSlots, type ZipSlot } from '../cache/zip-read';
import { writeFileAtomicSync } from '../fsutil';

/** Where patch PNGs pulled out of a .zip archive go, under the output folder (never in the archive). */
export function patchScratchDir(outputDir: string): string {
  return join(outputDir, '.idc-view', 'patches');
}

const zipDirectories = new Map<string, { mtimeKey: string; dir: Map<string, ZipSlot> }>();

/**
 * An image file for each patch, for a webview to show: the file itself when the archive is a
 * folder; for a .zip, the entry extracted once into `patchScratchDir(outputDir)` (the archive is
 * only read). `source` is the manifest's column. A patch that cannot be read gets null.
 */
export function patchImagePaths(rows: readonly { id: string; source: string }[], archive: string, outputDir: string): (string | null)[] {
  if (!/\.zip$/i.test(archive)) {
    return rows.map((r) => {
      const p = resolve(archive, r.source);
      return existsSync(p) ? p : null;
    });
  }
  const scratch = patchScratchDir(outputDir);
  const out: (string | null)[] = rows.map((r) => {
    const p = join(scratch, `${r.id.replace(/[^\w.-]/g, '_')}.png`);
    return existsSync(p) ? p : null;
  });
  const missing = rows.map((_, i) => i).filter((i) => out[i] === null);
  if (!missing.length) return out;
  const dir = zipDirectory(archive);
  const slots: number[] = [];
  const wanted: number[] = [];
  for (const i of missing) {
    const slot = dir.get(rows[i].source);
    if (!slot) continue;
    packSlot(slot, slots);
    wanted.push(i);
  }
  if (!wanted.length) return out;
  mkdirSync(scratch, { recursive: true });
  const bytes = readZipSlots(archive, slots, wanted.length);
  wanted.forEach((i, k) => {
    const b = bytes[k];
    if (typeof b === 'string') return;
    const p = join(scratch, `${rows[i].id.replace(/[^\w.-]/g, '_')}.png`);
    writeFileAtomicSync(p, b);
    out[i] = p;
  });
  return out;
}

function zipDirectory(archive: string): Map<string, ZipSlot> {
  // Reading the central directory of the full archive takes ~1 s: keep it while the zip is unchanged.
  const { mtimeMs, size } = statSync(archive);
  const key = `${mtimeMs}:${size}`;
  const hit = zipDirectories.get(archive);
  if (hit && hit.mtimeKey === key) return hit.dir;
  const dir = readZipDirectory(archive);
  zipDirectories.set(archive, { mtimeKey: key, dir });
  return dir;
}
