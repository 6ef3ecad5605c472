import { mkdirSync, writeFileSync, readdirSync, readFileSync, lstatSync, readlinkSync, mkdtempSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { encode } from 'fast-png';
import { patchFileName, type Label } from '../../src/core/naming';

export function tempDir(prefix = 'idc-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A small valid RGB PNG whose pixels depend on `seed`. */
export function makePng(width = 50, height = 50, seed = 1): Buffer {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97) & 255;
  return Buffer.from(encode({ width, height, data, channels: 3, depth: 8 }));
}

export interface PatchSpec { patient: string; x: number; y: number; label: Label; width?: number; height?: number }

/** Writes patches in the raw layout `<root>/<pid>/<label>/<name>`; returns the relative paths. */
export function writePatches(root: string, specs: PatchSpec[]): string[] {
  return specs.map((s, i) => {
    const rel = `${s.patient}/${s.label}/${patchFileName(s.patient, s.x, s.y, s.label)}`;
    mkdirSync(join(root, dirname(rel)), { recursive: true });
    writeFileSync(join(root, rel), makePng(s.width ?? 50, s.height ?? 50, i + 1));
    return rel;
  });
}

/** A regular grid of patches for `patients`, with `positives` of each patient's patches labelled 1. */
export function gridSpecs(patients: string[], perPatient = 6, positives = 2): PatchSpec[] {
  const specs: PatchSpec[] = [];
  for (const p of patients) {
    for (let k = 0; k < perPatient; k++) specs.push({ patient: p, x: 1 + 50 * k, y: 1, label: k < positives ? 1 : 0 });
  }
  return specs;
}

/** Content, mode and link target of every entry under root: equal before and after means untouched. */
export function treeChecksum(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) out.set(r, `link:${readlinkSync(abs)}`);
      else if (st.isDirectory()) { out.set(r + '/', `dir:${st.mode}`); if (st.mode & 0o400) try { walk(abs, r); } catch { /* unreadable on purpose */ } }
      else if (!st.isFile()) out.set(r, `special:${st.mode}:${st.mtimeMs}`); // a FIFO would block a read
      else {
        let h = 'unreadable';
        try { h = createHash('sha256').update(readFileSync(abs)).digest('hex'); } catch { /* unreadable on purpose */ }
        out.set(r, `file:${st.mode}:${st.size}:${st.mtimeMs}:${h}`);
      }
    }
  };
  if (lstatSync(root).isFile()) out.set('.', createHash('sha256').update(readFileSync(root)).digest('hex') + `:${lstatSync(root).mtimeMs}`);
  else walk(root, '');
  return out;
}
