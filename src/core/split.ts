import { IdcError } from './errors';
import { writeJsonAtomic, readTextOr } from './fsutil';
import type { ManifestRow } from './manifest';
import { Rng } from './rng';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export interface SplitSummary {
  patients: number;
  patches: number;
  positives: number;
  positiveRate: number;
}

export interface SplitFile {
  version: 1;
  seed: number;
  ratios: [number, number, number];
  stratify: boolean;
  manifestHash: string;
  createdAt: string;
  patients: Record<SplitName, string[]>;
  summary: Record<SplitName, SplitSummary>;
  /** Patients moved so that validation and test hold both classes. */
  notes?: string[];
  /** A split left with one class because too few patients hold the other, and what to change. */
  warnings?: string[];
}

export interface SplitOptions {
  ratios: [number, number, number];
  seed: number;
  stratify: boolean;
  manifestHash: string;
}

export interface Patient {
  id: string;
  patches: number;
  positives: number;
  /** Position after the seeded shuffle: the tie-breaker everywhere, so the seed decides ties. */
  rank: number;
}

/**
 * Splits patients (never patches) into train/val/test so that no patient leaks across splits.
 *
 * Patients go largest first; each goes to a split with a patch deficit (target minus assigned)
 * and room left for it, picked at random weighted by deficit; when none has room, to the largest
 * deficit. Largest-first packs patch shares tightly (the last, small patients fill the gaps); the
 * weighted pick keeps different seeds giving different splits, which a pure largest-first greedy
 * would not (its order is fixed by patient size).
 *
 * With `stratify`, patients are binned into quantile strata of positive fraction, filled one after
 * another against cumulative targets (ratio x patches so far), so every split gets its share of
 * each stratum and rounding errors carry over instead of adding up.
 */
export function splitByPatient(rows: readonly ManifestRow[], opts: SplitOptions): SplitFile {
  const ratios = checkRatios(opts.ratios);
  if (rows.length === 0) throw new IdcError('The manifest has no patches to split.', 'Run "idc organize <archive>" on a non-empty archive first.', 'EMPTY_MANIFEST');

  const patients = groupPatients(rows);
  const active = ([0, 1, 2] as const).filter((j) => ratios[j] > 0);
  if (patients.length < active.length) {
    const names = active.map((j) => SPLIT_NAMES[j]).join(', ');
    throw new IdcError(
      `Only ${patients.length} patient${patients.length === 1 ? '' : 's'} in the manifest, but the split needs at least one patient in each of ${names} (every split with a ratio above 0).`,
      'Set the val or test ratio to 0 (split.ratios in idc.config.json), or use an archive with more patients.',
      'TOO_FEW_PATIENTS',
    );
  }

  const rng = new Rng(opts.seed);
  rng.shuffle(patients).forEach((p, i) => (p.rank = i));
  const strata = opts.stratify ? makeStrata(patients, Math.min(...active.map((j) => ratios[j]))) : [patients];

  const total = rows.length;
  const members: Patient[][] = [[], [], []];
  const assigned = [0, 0, 0];
  const deficit = [0, 0, 0];
  const candidate = [false, false, false];
  let cumulative = 0;
  for (const stratum of strata) {
    cumulative += stratum.reduce((s, p) => s + p.patches, 0);
    const order = stratum.slice().sort((a, b) => b.patches - a.patches || a.rank - b.rank);
    for (const p of order) {
      let best = active[0];
      let weight = 0;
      for (const j of active) {
        deficit[j] = ratios[j] * cumulative - assigned[j];
        if (deficit[j] > deficit[best]) best = j;
        // Room is checked against the final target, not the stratum's: otherwise big patients
        // never fit val/test's small per-stratum targets and those splits get only small patients.
        candidate[j] = deficit[j] > 0 && ratios[j] * total - assigned[j] >= p.patches;
        if (candidate[j]) weight += deficit[j];
      }
      if (weight > 0) {
        let u = rng.next() * weight;
        for (const j of active) {
          if (!candidate[j]) continue;
          best = j;
          u -= deficit[j];
          if (u < 0) break;
        }
      }
      members[best].push(p);
      assigned[best] += p.patches;
    }
  }
  fillEmptySplits(members, active);
  const { notes, warnings } = giveBothClasses(members, active, ratios, total);

  const split: SplitFile = {
    version: 1,
    seed: opts.seed,
    ratios: [...opts.ratios],
    stratify: opts.stratify,
    manifestHash: opts.manifestHash,
    createdAt: new Date().toISOString(),
    patients: {
      train: members[0].map((p) => p.id).sort(comparePatientIds),
      val: members[1].map((p) => p.id).sort(comparePatientIds),
      test: members[2].map((p) => p.id).sort(comparePatientIds),
    },
    summary: { train: summarize(members[0]), val: summarize(members[1]), test: summarize(members[2]) },
  };
  if (notes.length) split.notes = notes;
  if (warnings.length) split.warnings = warnings;
  checkNoOverlap(split);
  return split;
}

function checkRatios(r: readonly number[]): [number, number, number] {
  if (!Array.isArray(r) || r.length !== 3 || !r.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1)) {
    throw new IdcError(`Split ratios must be three numbers in [0, 1] for [train, val, test]; got ${JSON.stringify(r)}.`, 'Fix split.ratios in idc.config.json.', 'BAD_CONFIG');
  }
  const sum = r[0] + r[1] + r[2];
  if (Math.abs(sum - 1) > 1e-6) throw new IdcError(`Split ratios must sum to 1; ${r.join(' + ')} = ${Math.round(sum * 1e9) / 1e9}.`, 'Fix split.ratios in idc.config.json.', 'BAD_CONFIG');
  if (!(r[0] > 0)) throw new IdcError('The train ratio must be above 0.', 'Fix split.ratios in idc.config.json.', 'BAD_CONFIG');
  return [r[0], r[1], r[2]];
}

/** Sorted by id so the result does not depend on row order. */
export function groupPatients(rows: readonly ManifestRow[]): Patient[] {
  const byId = new Map<string, Patient>();
  for (const r of rows) {
    let p = byId.get(r.patient);
    if (!p) byId.set(r.patient, (p = { id: r.patient, patches: 0, positives: 0, rank: 0 }));
    p.patches++;
    if (r.label === 1) p.positives++;
  }
  return [...byId.values()].sort((a, b) => comparePatientIds(a.id, b.id));
}

/**
 * Quantile strata of positive fraction. Each stratum is big enough (at least 7 patients, and
 * at least 1/smallest ratio) to hand every split about one patient; measured on 279 lognormal
 * patients, smaller strata track positive rates best without hurting patch shares.
 */
function makeStrata(patients: readonly Patient[], minRatio: number): Patient[][] {
  const perStratum = Math.max(7, Math.ceil(1 / minRatio));
  const count = Math.max(1, Math.floor(patients.length / perStratum));
  const byFraction = patients.slice().sort((a, b) => a.positives / a.patches - b.positives / b.patches || a.rank - b.rank);
  const strata: Patient[][] = [];
  for (let s = 0; s < count; s++) {
    strata.push(byFraction.slice(Math.floor((s * byFraction.length) / count), Math.floor(((s + 1) * byFraction.length) / count)));
  }
  return strata;
}

/** Extreme ratios can leave a split empty; move the smallest patient from a split that can spare one. */
function fillEmptySplits(members: Patient[][], active: readonly number[]): void {
  for (const j of active) {
    if (members[j].length) continue;
    let donor = -1;
    let pick = -1;
    for (const d of active) {
      if (members[d].length < 2) continue;
      members[d].forEach((p, i) => {
        const cur = donor < 0 ? undefined : members[donor][pick];
        if (!cur || p.patches < cur.patches || (p.patches === cur.patches && p.rank < cur.rank)) { donor = d; pick = i; }
      });
    }
    // Unreachable when patients >= active splits, which splitByPatient checks.
    if (donor < 0) throw new Error('No patient to move into an empty split');
    members[j].push(members[donor].splice(pick, 1)[0]);
  }
}

const CLASS_NAMES = ['IDC-negative', 'IDC-positive'] as const;

function holds(p: Patient, c: 0 | 1): boolean {
  return c === 1 ? p.positives > 0 : p.positives < p.patches;
}

/**
 * A validation or test split of one class cannot do its job (no AUC, no recall of the missing
 * class, early stopping on one class). When the manifest has both classes, each split lacking one
 * gets a patient holding it from a split with more than one such patient: moved alone, or swapped
 * with one of its own patients, whichever leaves patch shares closest to the ratios (seeded rank
 * breaks ties). A move never takes a class away from a split. What cannot be repaired is a warning.
 */
function giveBothClasses(members: Patient[][], active: readonly number[], ratios: readonly number[], total: number): { notes: string[]; warnings: string[] } {
  const notes: string[] = [];
  const warnings: string[] = [];
  const all = members.flat();
  if (!all.some((p) => holds(p, 0)) || !all.some((p) => holds(p, 1))) return { notes, warnings };
  const has = (j: number, c: 0 | 1) => members[j].some((p) => holds(p, c));
  const count = (j: number, c: 0 | 1) => members[j].filter((p) => holds(p, c)).length;
  const sizes = () => members.map((m) => m.reduce((s, p) => s + p.patches, 0));
  const error = (sz: readonly number[]) => active.reduce((e, k) => e + Math.abs(sz[k] - ratios[k] * total), 0);
  // A patient can leave split d when d keeps every class it has without it.
  const canLeave = (d: number, p: Patient) => ([0, 1] as const).every((k) => !holds(p, k) || count(d, k) > 1);
  for (const c of [0, 1] as const) {
    for (const j of active) {
      if (j === 0 || has(j, c)) continue;
      let best: { d: number; p: Patient; q?: Patient; error: number } | undefined;
      const sz = sizes();
      for (const d of active) {
        if (d === j) continue;
        for (const p of members[d]) {
          if (!holds(p, c) || !canLeave(d, p)) continue;
          const options: (Patient | undefined)[] = [undefined, ...members[j].filter((q) => ([0, 1] as const).every((k) => !holds(q, k) || holds(p, k) || count(j, k) > 1))];
          for (const q of options) {
            const next = sz.slice();
            next[d] += (q?.patches ?? 0) - p.patches;
            next[j] += p.patches - (q?.patches ?? 0);
            const e = error(next);
            if (!best || e < best.error - 1e-9 || (Math.abs(e - best.error) <= 1e-9 && (p.rank < best.p.rank || (p === best.p && (q?.rank ?? -1) < (best.q?.rank ?? -1))))) best = { d, p, q, error: e };
          }
        }
      }
      if (!best) {
        const holders = all.filter((p) => holds(p, c)).map((p) => p.id).sort(comparePatientIds);
        const names = active.map((k) => SPLIT_NAMES[k]);
        const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0];
        const zeroable = active.filter((k) => k !== 0).map((k) => SPLIT_NAMES[k]).join(' or ');
        warnings.push(`${SPLIT_NAMES[j]} has no ${CLASS_NAMES[c]} patches: only ${holders.length} patient${holders.length === 1 ? '' : 's'} (${holders.slice(0, 10).join(', ')}${holders.length > 10 ? ', …' : ''}) ${holders.length === 1 ? 'has' : 'have'} ${CLASS_NAMES[c]} patches, and ${list} need one each. `
          + `Set the ${zeroable} ratio to 0 (split.ratios or --ratios), or add patients with ${CLASS_NAMES[c]} patches to the archive.`);
        continue;
      }
      const { d, p, q } = best;
      members[d].splice(members[d].indexOf(p), 1);
      members[j].push(p);
      if (q) {
        members[j].splice(members[j].indexOf(q), 1);
        members[d].push(q);
      }
      // A big patient swapped in can overfill j: hand its other patients back while that brings shares closer.
      const back: Patient[] = q ? [q] : [];
      for (;;) {
        const now = sizes();
        let give: Patient | undefined;
        let giveError = error(now);
        for (const r of members[j]) {
          if (r === p || !canLeave(j, r)) continue;
          const next = now.slice();
          next[j] -= r.patches;
          next[d] += r.patches;
          const e = error(next);
          if (e < giveError - 1e-9 || (give && Math.abs(e - giveError) <= 1e-9 && r.rank < give.rank)) { give = r; giveError = e; }
        }
        if (!give) break;
        members[j].splice(members[j].indexOf(give), 1);
        members[d].push(give);
        back.push(give);
      }
      notes.push(`${SPLIT_NAMES[j]} had no ${CLASS_NAMES[c]} patches: patient ${p.id} moved there from ${SPLIT_NAMES[d]}${back.length ? `, patient${back.length > 1 ? 's' : ''} ${back.map((r) => r.id).join(', ')} from ${SPLIT_NAMES[j]} to ${SPLIT_NAMES[d]}` : ''}.`);
    }
  }
  return { notes, warnings };
}

export function summarize(ps: readonly Pick<Patient, 'patches' | 'positives'>[]): SplitSummary {
  let patches = 0;
  let positives = 0;
  for (const p of ps) { patches += p.patches; positives += p.positives; }
  return { patients: ps.length, patches, positives, positiveRate: patches ? positives / patches : 0 };
}

/** Numeric ids in numeric order (the archive's ids are numbers), anything else by code unit. */
export function comparePatientIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b) && a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Throws when a patient is listed in more than one split (or twice in one): that would leak. */
export function checkNoOverlap(split: Pick<SplitFile, 'patients'>): void {
  const where = new Map<string, SplitName[]>();
  for (const name of SPLIT_NAMES) {
    for (const id of split.patients[name] ?? []) {
      const list = where.get(id);
      if (list) list.push(name);
      else where.set(id, [name]);
    }
  }
  const bad = [...where].filter(([, names]) => names.length > 1);
  if (!bad.length) return;
  const shown = bad.slice(0, 10).map(([id, names]) => `${id} (${names.join(', ')})`).join('; ');
  throw new IdcError(
    `${bad.length} patient${bad.length === 1 ? ' is' : 's are'} in more than one split, which would leak patients between training and evaluation: ${shown}${bad.length > 10 ? `; and ${bad.length - 10} more` : ''}.`,
    'Run "idc split" again to rebuild the split.',
    'SPLIT_OVERLAP',
  );
}

export async function writeSplit(file: string, split: SplitFile): Promise<void> {
  checkNoOverlap(split);
  await writeJsonAtomic(file, split);
}

export async function readSplit(file: string): Promise<SplitFile> {
  const text = await readTextOr(file, () => new IdcError(`No split at ${file}.`, 'Run "idc split" first (or "IDC: Split by Patient").', 'NO_SPLIT'));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `it is not valid JSON (${(e as Error).message})`);
  }
  const problem = shapeProblem(value);
  if (problem) throw corrupt(file, problem);
  const split = value as SplitFile;
  try {
    checkNoOverlap(split);
  } catch (e) {
    throw new IdcError(`${file}: ${(e as Error).message}`, (e as IdcError).hint, 'SPLIT_OVERLAP');
  }
  return split;
}

function corrupt(file: string, why: string): IdcError {
  return new IdcError(`${file} is not a valid split file: ${why}.`, 'Delete it and run "idc split" again.', 'BAD_SPLIT');
}

function shapeProblem(v: unknown): string | undefined {
  if (!isObject(v)) return 'expected a JSON object';
  if (v.version !== 1) return `unsupported version ${JSON.stringify(v.version)} (expected 1)`;
  if (typeof v.seed !== 'number' || !Number.isFinite(v.seed)) return '"seed" must be a number';
  if (!Array.isArray(v.ratios) || v.ratios.length !== 3 || !v.ratios.every((x) => typeof x === 'number' && Number.isFinite(x))) return '"ratios" must be three numbers';
  if (typeof v.stratify !== 'boolean') return '"stratify" must be true or false';
  if (typeof v.manifestHash !== 'string') return '"manifestHash" must be a string';
  if (typeof v.createdAt !== 'string') return '"createdAt" must be a string';
  if (!isObject(v.patients)) return '"patients" must be an object';
  if (!isObject(v.summary)) return '"summary" must be an object';
  for (const name of SPLIT_NAMES) {
    const ids = v.patients[name];
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id !== '')) return `"patients.${name}" must be a list of patient ids`;
    const s = v.summary[name];
    if (!isObject(s) || !(['patients', 'patches', 'positives', 'positiveRate'] as const).every((k) => typeof s[k] === 'number' && Number.isFinite(s[k]))) {
      return `"summary.${name}" must hold the numbers patients, patches, positives and positiveRate`;
    }
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rows per split, in manifest order. A manifest patient missing from the split means the split is stale. */
export function assignRows(rows: readonly ManifestRow[], split: Pick<SplitFile, 'patients'>): Record<SplitName, ManifestRow[]> {
  const of = new Map<string, SplitName>();
  for (const name of SPLIT_NAMES) for (const id of split.patients[name]) of.set(id, name);
  const out: Record<SplitName, ManifestRow[]> = { train: [], val: [], test: [] };
  const missing = new Set<string>();
  for (const r of rows) {
    const name = of.get(r.patient);
    if (name) out[name].push(r);
    else missing.add(r.patient);
  }
  if (missing.size) {
    const ids = [...missing].sort(comparePatientIds);
    throw new IdcError(
      `The split is stale: ${ids.length} patient${ids.length === 1 ? '' : 's'} in the manifest ${ids.length === 1 ? 'is' : 'are'} in no split (${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}).`,
      'The manifest changed since the split was made; run "idc split" again.',
      'STALE_SPLIT',
    );
  }
  return out;
}

/** Aligned table of the split, then the leak check, for the CLI and the output panel. */
export function formatSplitSummary(split: SplitFile): string {
  const header = ['split', 'patients', 'patches', 'positives', 'positive rate'];
  const total = { patients: 0, patches: 0, positives: 0 };
  const body: string[][] = [];
  for (const name of SPLIT_NAMES) {
    const s = split.summary[name];
    total.patients += s.patients;
    total.patches += s.patches;
    total.positives += s.positives;
    body.push([name, int(s.patients), int(s.patches), int(s.positives), pct(s.positiveRate)]);
  }
  body.push(['total', int(total.patients), int(total.patches), int(total.positives), pct(total.patches ? total.positives / total.patches : 0)]);
  const rows = [header, ...body];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());

  const checked = new Set(SPLIT_NAMES.flatMap((n) => split.patients[n])).size;
  let overlap: string;
  try {
    checkNoOverlap(split);
    overlap = `patient overlap: none (checked ${checked} patients)`;
  } catch (e) {
    overlap = `patient overlap: FOUND. ${(e as Error).message}`;
  }
  return [...lines, overlap, ...(split.notes ?? []).map((n) => `note: ${n}`), ...(split.warnings ?? []).map((w) => `warning: ${w}`)].join('\n');
}

function int(n: number): string {
  return n.toLocaleString('en-US');
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
