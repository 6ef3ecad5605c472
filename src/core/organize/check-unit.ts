import { checkPng } from './png-check';
import { placeFile, type Issue } from './layout';
import { describeFsError, type ArchiveEntry } from './listing';
import { readZipSlots, packSlot } from '../cache/zip-read';

/** A patch as found in one place; several copies of one id are reconciled at the end. */
export type Candidate = [id: string, patient: string, x: number, y: number, label: 0 | 1, width: number, height: number, source: string, size: number, crc: number, warning: string];

/** Everything organize learned about one patient: the unit of work, journalling and de-duplication. */
export interface UnitRecord {
  unit: string;
  /** Hash of the patient's file list: a journalled unit is reused only if it still matches. */
  sig: string;
  c: Candidate[];
  i: Issue[];
}

/** Reads and checks one patient's files (already placed by placeFile). */
export async function checkUnit(unit: string, sig: string, entries: readonly ArchiveEntry[], read: (e: ArchiveEntry) => Buffer | Promise<Buffer>, kind: 'dir' | 'zip'): Promise<UnitRecord> {
  const rec: UnitRecord = { unit, sig, c: [], i: [] };
  for (const entry of entries) {
    const placed = placeFile(entry.parts);
    if (!placed.ok) continue;
    let bytes: Buffer;
    try {
      bytes = await read(entry);
    } catch (e) {
      rec.i.push({ path: entry.rel, severity: 'skipped', reason: kind === 'zip' ? `unreadable zip entry: ${(e as Error).message}` : describeFsError(e) });
      continue;
    }
    const check = checkPng(bytes);
    if (!check.ok) { rec.i.push({ path: entry.rel, severity: 'skipped', reason: check.reason }); continue; }
    const n = placed.name;
    const { width, height, size, crc, warning } = check.info;
    rec.c.push([n.id, n.patient, n.x, n.y, n.label, width, height, entry.rel, size, crc, warning ?? '']);
  }
  return rec;
}

/** Reads all of a patient's zip entries with one pass of positioned reads (they lie side by side). */
export function zipUnitReader(zipPath: string, entries: readonly ArchiveEntry[]): (e: ArchiveEntry) => Buffer {
  const packed: number[] = [];
  for (const e of entries) packSlot(e.slot!, packed);
  const bytes = readZipSlots(zipPath, packed, entries.length);
  const byRel = new Map(entries.map((e, i) => [e.rel, bytes[i]]));
  return (e) => {
    const b = byRel.get(e.rel);
    if (b === undefined || typeof b === 'string') throw new Error(b ?? 'entry not listed');
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  };
}
