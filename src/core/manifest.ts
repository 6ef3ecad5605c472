import { createHash } from 'node:crypto';
import { IdcError } from './errors';
import { writeFileAtomic, readTextOr } from './fsutil';
import type { Label } from './naming';

/** One patch of the archive, as organize found it. */
export interface ManifestRow {
  id: string;
  patient: string;
  x: number;
  y: number;
  label: Label;
  width: number;
  height: number;
  /** Path relative to the archive root (a folder), or the entry name inside the .zip. */
  source: string;
}

export const MANIFEST_COLUMNS = ['id', 'patient', 'x', 'y', 'label', 'width', 'height', 'source'] as const;

/** CSV (not JSON) because it is 277k rows that users open in a spreadsheet or pandas. */
export function formatManifest(rows: readonly ManifestRow[]): string {
  const out: string[] = [MANIFEST_COLUMNS.join(',')];
  for (const r of rows) out.push(`${r.id},${r.patient},${r.x},${r.y},${r.label},${r.width},${r.height},${csvField(r.source)}`);
  return out.join('\n') + '\n';
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function parseManifest(text: string, file = 'manifest.csv'): ManifestRow[] {
  const header = MANIFEST_COLUMNS.join(',');
  if (!text.startsWith(header + '\n') && !text.startsWith(header + '\r\n') && text !== header) {
    throw new IdcError(`${file} does not start with the manifest header "${header}".`, 'Run "idc organize" again to rebuild it.', 'BAD_MANIFEST');
  }
  const rows: ManifestRow[] = [];
  // indexOf over the whole text instead of split('\n'): 277k rows parse in a fraction of the time.
  let pos = text.indexOf('\n') + 1;
  let lineNo = 1;
  while (pos > 0 && pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.charCodeAt(end - 1) === 13 ? text.slice(pos, end - 1) : text.slice(pos, end);
    pos = end + 1;
    if (line === '') continue;
    const f = splitCsvLine(line);
    const label = +f[4];
    const row: ManifestRow = { id: f[0], patient: f[1], x: +f[2], y: +f[3], label: label as Label, width: +f[5], height: +f[6], source: f[7] };
    if (f.length !== 8 || !row.id || !row.patient || (label !== 0 && label !== 1) || !Number.isFinite(row.x) || !Number.isFinite(row.y) || !(row.width > 0) || !(row.height > 0)) {
      throw new IdcError(`${file}, line ${lineNo} is malformed: ${line.slice(0, 120)}`, 'Run "idc organize" again to rebuild the manifest.', 'BAD_MANIFEST');
    }
    rows.push(row);
  }
  return rows;
}

function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(cur); cur = ''; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

export async function readManifest(file: string): Promise<ManifestRow[]> {
  return (await readManifestWithHash(file)).rows;
}

/** Rows and content hash from one read (splits and caches record the hash). */
export async function readManifestWithHash(file: string): Promise<{ rows: ManifestRow[]; hash: string }> {
  const text = await readTextOr(file, () => new IdcError(`No manifest at ${file}.`, 'Run "idc organize <archive>" first (or "IDC: Organize Raw Archive").', 'NO_MANIFEST'));
  return { rows: parseManifest(text, file), hash: manifestHash(text) };
}

export async function writeManifest(file: string, rows: readonly ManifestRow[]): Promise<string> {
  const text = formatManifest(rows);
  await writeFileAtomic(file, text);
  return manifestHash(text);
}

/** Identity of a manifest's content; splits and caches record it to detect staleness. */
export function manifestHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
