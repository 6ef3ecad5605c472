import { readFileSync } from 'node:fs';
import { IdcError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import type { Prediction, ErrorItem } from './types';

const HEADER = 'id,patient,x,y,label,score';

/** Nine significant digits identify a float32 score; readPredictions rounds back to that float32, so thresholds compare exactly. */
export function formatPredictions(rows: readonly Prediction[]): string {
  const out = [HEADER];
  for (const r of rows) out.push(`${r.id},${r.patient},${r.x},${r.y},${r.label ?? ''},${Number(r.score.toPrecision(9))}`);
  return out.join('\n') + '\n';
}

export async function writePredictions(file: string, rows: readonly Prediction[]): Promise<void> {
  await writeFileAtomic(file, formatPredictions(rows));
}

export function readPredictions(file: string): Prediction[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new IdcError(`No predictions at ${file}.`, 'Run "idc evaluate" first.', 'NO_PREDICTIONS');
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER) throw new IdcError(`${file} is not a predictions file.`, 'Run "idc evaluate" again.', 'BAD_PREDICTIONS');
  const rows: Prediction[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]) continue;
    const [id, patient, x, y, label, score] = lines[i].split(',');
    rows.push({ id, patient, x: Number(x), y: Number(y), label: label === '' ? undefined : (Number(label) as 0 | 1), score: Math.fround(Number(score)) });
  }
  return rows;
}

export type ErrorKind = 'fn' | 'fp' | 'tp' | 'tn';

/**
 * One page of a confusion-matrix cell at `threshold` (score >= threshold ⇒ positive), most wrong
 * (or, for TP/TN, least certain) first: FN by ascending score, FP by descending score.
 */
export function errorPage(rows: readonly Prediction[], kind: ErrorKind, threshold: number, offset = 0, limit = 100): { total: number; items: ErrorItem[] } {
  const want = (r: Prediction): boolean => {
    if (r.label === undefined) return false;
    const pos = r.score >= threshold;
    return kind === 'fn' ? r.label === 1 && !pos : kind === 'fp' ? r.label === 0 && pos : kind === 'tp' ? r.label === 1 && pos : r.label === 0 && !pos;
  };
  const picked = rows.filter(want);
  const ascending = kind === 'fn' || kind === 'tp';
  picked.sort((a, b) => (ascending ? a.score - b.score : b.score - a.score) || (a.id < b.id ? -1 : 1));
  return { total: picked.length, items: picked.slice(offset, offset + limit).map((r) => ({ id: r.id, patient: r.patient, x: r.x, y: r.y, label: r.label!, score: r.score })) };
}
