import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readZipDirectory } from '../cache/zip-directory';
import { packSlot, readZipSlots, type ZipSlot } from '../cache/zip-read';
import { readRegularFileSync, writeFileAtomicSync } from '../fsutil';

/** Where patch PNGs pulled out of a .zip archive go, under the output folder (never in the archive). */
export function patchScratchDir(outputDir: string): string {
  return join(outputDir, '.idc-view', 'patches');
}

/**
 * Where an evaluation's patches come from: the workspace's manifest and archive, or for an external
 * archive (evaluate --archive, metrics.json `external`) its own folder under the output and the
 * archive its manifest.meta.json names. `copy`: that archive lies outside the folders a webview may
 * read, so its patch images are copied under the output folder as a zip's are extracted.
 */
export function patchSourceOf(report: { external?: { name?: unknown } } | undefined, outputDir: string, archive: string): { dataDir: string; archive: string; copy: boolean } {
  const name = report?.external?.name;
  // A plain folder name only: metrics.json must not point the views outside <output>/external/.
  if (typeof name !== 'string' || !/^[\w-][\w.-]*$/.test(name)) return { dataDir: outputDir, archive, copy: false };
  const dataDir = join(outputDir, 'external', name);
  let source = '';
  try { source = String((JSON.parse(readFileSync(join(dataDir, 'manifest.meta.json'), 'utf8')) as { archive?: unknown }).archive ?? ''); } catch { /* organize never finished */ }
  return { dataDir, archive: source, copy: true };
}

const zipDirectories = new Map<string, { mtimeKey: string; dir: Map<string, ZipSlot> }>();

/**
 * An image file for each patch, for a webview to show: the file itself when the archive is a
 * folder; for a .zip, the entry extracted once into `patchScratchDir(outputDir)` (the archive is
 * only read). `source` is the manifest's column. A patch that cannot be read gets null.
 */
export function patchImagePaths(rows: readonly { id: string; source: string }[], archive: string, outputDir: string, opts: { copy?: boolean } = {}): (string | null)[] {
  if (!/\.zip$/i.test(archive)) {
    return rows.map((r) => {
      const p = resolve(archive, r.source);
      if (!opts.copy) return existsSync(p) ? p : null;
      const copy = join(patchScratchDir(outputDir), `${r.id.replace(/[^\w.-]/g, '_')}.png`);
      if (existsSync(copy)) return copy;
      try {
        const bytes = readRegularFileSync(p);
        mkdirSync(patchScratchDir(outputDir), { recursive: true });
        writeFileAtomicSync(copy, bytes);
        return copy;
      } catch {
        return null;
      }
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
