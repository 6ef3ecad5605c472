import { readFileSync } from 'node:fs';
import { IdcError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import type { Prediction, ErrorItem } from './types';

const HEADER = 'id,patient,x,y,label,score';
/**
 * Columns predict may add after score (evaluate writes none): the probability after temperature
 * scaling and the label at the threshold it applied. Older files have neither and still read.
 */
export const EXTRA_COLUMNS = ['score_calibrated', 'predicted_label'] as const;
export type ExtraColumn = (typeof EXTRA_COLUMNS)[number];

/** Nine significant digits identify a float32 score; readPredictions rounds back to that float32, so thresholds compare exactly. */
export function formatPredictions(rows: readonly Prediction[], extra: readonly ExtraColumn[] = []): string {
  const cols = EXTRA_COLUMNS.filter((c) => extra.includes(c));
  const out = [[HEADER, ...cols].join(',')];
  for (const r of rows) {
    let line = `${r.id},${r.patient},${r.x},${r.y},${r.label ?? ''},${Number(r.score.toPrecision(9))}`;
    for (const c of cols) {
      const v = c === 'score_calibrated' ? r.calibrated : r.predicted;
      line += `,${v === undefined ? '' : Number(v.toPrecision(9))}`;
    }
    out.push(line);
  }
  return out.join('\n') + '\n';
}

export async function writePredictions(file: string, rows: readonly Prediction[], extra: readonly ExtraColumn[] = []): Promise<void> {
  await writeFileAtomic(file, formatPredictions(rows, extra));
}

export function readPredictions(file: string): Prediction[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new IdcError(`No predictions at ${file}.`, 'Run "idc evaluate" first.', 'NO_PREDICTIONS');
  }
  const lines = text.split('\n');
  const header = lines[0].split(',');
  const extra = header.slice(6);
  if (header.slice(0, 6).join(',') !== HEADER || extra.some((c) => !(EXTRA_COLUMNS as readonly string[]).includes(c))) {
    throw new IdcError(`${file} is not a predictions file.`, 'Run "idc evaluate" again.', 'BAD_PREDICTIONS');
  }
  const calibratedAt = extra.indexOf('score_calibrated');
  const predictedAt = extra.indexOf('predicted_label');
  const rows: Prediction[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]) continue;
    const [id, patient, x, y, label, score, ...more] = lines[i].split(',');
    const row: Prediction = { id, patient, x: Number(x), y: Number(y), label: label === '' ? undefined : (Number(label) as 0 | 1), score: Math.fround(Number(score)) };
    if (calibratedAt >= 0 && more[calibratedAt]) row.calibrated = Number(more[calibratedAt]);
    if (predictedAt >= 0 && more[predictedAt]) row.predicted = Number(more[predictedAt]) as 0 | 1;
    rows.push(row);
  }
  return rows;
}

export type ErrorKind = 'fn' | 'fp' | 'tp' | 'tn';

/** Whether a labelled prediction falls in a confusion-matrix cell at `threshold` (score >= threshold ⇒ positive). */
export function inCell(label: number | undefined, score: number, kind: ErrorKind, threshold: number): boolean {
  if (label === undefined) return false;
  const pos = score >= threshold;
  return kind === 'fn' ? label === 1 && !pos : kind === 'fp' ? label === 0 && pos : kind === 'tp' ? label === 1 && pos : label === 0 && !pos;
}

/**
 * Indices of the rows in a confusion-matrix cell at `threshold`, most wrong (or, for TP/TN, least
 * certain) first: FN and TP by ascending score, FP and TN by descending score, ties by id.
 * `keep` narrows the rows first (e.g. one patient).
 */
export function cellOrder(rows: readonly Prediction[], kind: ErrorKind, threshold: number, keep?: (r: Prediction) => boolean): Uint32Array {
  const picked: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (inCell(r.label, r.score, kind, threshold) && (!keep || keep(r))) picked.push(i);
  }
  const ascending = kind === 'fn' || kind === 'tp';
  const order = Uint32Array.from(picked);
  order.sort((a, b) => {
    const ra = rows[a], rb = rows[b];
    return (ascending ? ra.score - rb.score : rb.score - ra.score) || (ra.id < rb.id ? -1 : ra.id > rb.id ? 1 : 0);
  });
  return order;
}

/**
 * One page of a confusion-matrix cell at `threshold` (score >= threshold ⇒ positive), most wrong
 * (or, for TP/TN, least certain) first: FN by ascending score, FP by descending score.
 */
export function errorPage(rows: readonly Prediction[], kind: ErrorKind, threshold: number, offset = 0, limit = 100): { total: number; items: ErrorItem[] } {
  const order = cellOrder(rows, kind, threshold);
  const items: ErrorItem[] = [];
  for (const i of order.subarray(offset, offset + limit)) {
    const r = rows[i];
    items.push({ id: r.id, patient: r.patient, x: r.x, y: r.y, label: r.label!, score: r.score });
  }
  return { total: order.length, items };
}
