import { existsSync, statSync, rmSync, readFileSync, linkSync, copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { IdcError, throwIfCancelled } from '../errors';
import { writeJsonAtomic, readJsonIfExists, writeFileAtomic, mkdirpOrExplain, appendFileSyncExplained, wrapWriteError, placeIn } from '../fsutil';
import { noProgress, throttled, type ProgressSink } from '../progress';
import { manifestHash, formatManifest, readManifest, type ManifestRow } from '../manifest';
import { checkUnit, zipUnitReader, type Candidate, type UnitRecord } from './check-unit';
import type { CheckRequest } from './check.worker';
import { placeFile, type Issue } from './layout';
import { listDirectory, listZip, describeFsError, type ArchiveEntry, type ArchiveListing } from './listing';
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

export type Materialize = 'none' | 'link' | 'copy';

export interface OrganizeOptions {
  archive: string;
  out: string;
  materialize?: Materialize;
  /** Redo everything even when the manifest looks up to date. */
  force?: boolean;
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  /** Test hook: called after each patient's results are journalled (simulates a crash point). */
  afterUnit?: (patient: string) => void;
}

export interface PatientCounts {
  patient: string;
  negatives: number;
  positives: number;
  edgePatches: number;
}

export interface OrganizeReport {
  version: 1;
  archive: string;
  kind: 'dir' | 'zip';
  createdAt: string;
  totals: { files: number; patches: number; negatives: number; positives: number; patients: number; skipped: number; suspicious: number; duplicates: number; edgePatches: number };
  patients: PatientCounts[];
  /** Identical second copies (the zip's IDC_regular_ps50_idx5/ tree), per top-level folder. */
  duplicates: { tree: string; files: number }[];
  issues: Issue[];
}

export interface ManifestMeta {
  version: 1;
  archive: string;
  kind: 'dir' | 'zip';
  archiveSignature: string;
  manifestHash: string;
  rows: number;
  createdAt: string;
}

export interface OrganizeResult {
  upToDate: boolean;
  resumedPatients: number;
  manifestFile: string;
  reportFile: string;
  report: OrganizeReport;
  materialized?: { created: number; existing: number; mode: Materialize };
}

export const MANIFEST_FILE = 'manifest.csv';
export const MANIFEST_META_FILE = 'manifest.meta.json';
export const REPORT_FILE = 'organize-report.json';
const JOURNAL_DIR = '.idc-organize';
const JOURNAL_FILE = 'journal.jsonl';

/**
 * Scans a raw archive (folder or .zip) without touching it and writes manifest.csv,
 * manifest.meta.json and organize-report.json into `out`. Work is journalled per patient,
 * so an interrupted run resumes, and a run over an unchanged archive does nothing.
 */
export async function organize(opts: OrganizeOptions): Promise<OrganizeResult> {
  const progress = opts.onProgress ?? noProgress;
  const archive = resolve(opts.archive);
  const out = resolve(opts.out);
  const materialize = opts.materialize ?? 'none';
  const listing = await openArchive(archive, out);
  try {
    const manifestFile = join(out, MANIFEST_FILE);
    const reportFile = join(out, REPORT_FILE);
    const metaFile = join(out, MANIFEST_META_FILE);
    progress({ phase: 'organize.list', label: 'Listing archive', done: listing.entries.length, unit: 'files' });

    const meta = await readJsonIfExists<ManifestMeta>(metaFile).catch(() => undefined);
    if (!opts.force && meta && meta.archive === archive && meta.archiveSignature === listing.signature && existsSync(manifestFile) && existsSync(reportFile)
      && manifestHash(readFileSync(manifestFile, 'utf8')) === meta.manifestHash) {
      const report = JSON.parse(readFileSync(reportFile, 'utf8')) as OrganizeReport;
      const materialized = materialize !== 'none' ? await materializeRows(listing, out, await readManifest(manifestFile), materialize, progress, opts.signal) : undefined;
      return { upToDate: true, resumedPatients: 0, manifestFile, reportFile, report, materialized };
    }

    // Group files by patient: that is the unit of work, of journalling and of de-duplication.
    const units = new Map<string, ArchiveEntry[]>();
    const structureIssues: Issue[] = [...listing.issues];
    for (const entry of listing.entries) {
      const placed = placeFile(entry.parts);
      if (!placed.ok) { structureIssues.push({ path: entry.rel, severity: 'skipped', reason: placed.reason }); continue; }
      const list = units.get(placed.name.patient) ?? [];
      list.push(entry);
      units.set(placed.name.patient, list);
    }

    const journal = openJournal(join(out, JOURNAL_DIR), { archive, kind: listing.kind }, opts.force ?? false);
    const records: UnitRecord[] = [];
    const todo: { unit: string; sig: string; entries: ArchiveEntry[] }[] = [];
    const total = [...units.values()].reduce((s, u) => s + u.length, 0);
    let done = 0;
    const tick = throttled(progress);
    for (const patient of [...units.keys()].sort(comparePatients)) {
      const entries = units.get(patient)!;
      const sig = createHash('sha1').update(entries.map((e) => e.rel).join('\n')).digest('hex');
      const prior = journal.done.get(patient);
      if (prior && prior.sig === sig) { records.push(prior); done += entries.length; }
      else todo.push({ unit: patient, sig, entries });
    }
    const resumed = records.length;
    tick({ phase: 'organize.check', label: 'Checking patches', done, total, unit: 'files' });
    await checkUnits(listing, todo, opts.signal, (rec, files) => {
      journal.append(rec);
      records.push(rec);
      opts.afterUnit?.(rec.unit);
      done += files;
      tick({ phase: 'organize.check', label: 'Checking patches', done, total, unit: 'files' });
    });

    const { rows, issues, duplicates } = reconcile(records);
    const allIssues = [...structureIssues, ...issues].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const report = buildReport(archive, listing, rows, allIssues, duplicates);
    const text = formatManifest(rows);
    await writeFileAtomic(manifestFile, text);
    await writeJsonAtomic(reportFile, report);
    const newMeta: ManifestMeta = { version: 1, archive, kind: listing.kind, archiveSignature: listing.signature, manifestHash: manifestHash(text), rows: rows.length, createdAt: report.createdAt };
    await writeJsonAtomic(metaFile, newMeta);
    journal.remove();
    const materialized = materialize !== 'none' ? await materializeRows(listing, out, rows, materialize, progress, opts.signal) : undefined;
    return { upToDate: false, resumedPatients: resumed, manifestFile, reportFile, report, materialized };
  } finally {
    listing.close();
  }
}

/**
 * Checks patients on worker threads when the bundled worker exists (reads, inflation and CRCs
 * dominate, and scale with cores); otherwise on this thread.
 * `onDone` runs on this thread, one patient at a time, in completion order.
 */
async function checkUnits(listing: ArchiveListing, todo: { unit: string; sig: string; entries: ArchiveEntry[] }[], signal: AbortSignal | undefined, onDone: (rec: UnitRecord, files: number) => void): Promise<void> {
  const workerFile = join(__dirname, 'check.worker.js');
  const threads = Math.min(availableParallelism(), 8, Math.ceil(todo.length / 2));
  // Zips listed by the fast parser carry slots; the yauzl fallback reads through its own handle.
  const direct = listing.kind === 'dir' || listing.entries.every((e) => e.slot);
  if (!direct || threads < 2 || !existsSync(workerFile)) {
    for (const t of todo) {
      throwIfCancelled(signal);
      const read = direct && listing.kind === 'zip' ? zipUnitReader(listing.root, t.entries) : (e: ArchiveEntry) => listing.read(e);
      onDone(await checkUnit(t.unit, t.sig, t.entries, read, listing.kind), t.entries.length);
    }
    return;
  }
  const workers = Array.from({ length: threads }, () => new Worker(workerFile));
  try {
    let next = 0;
    let failure: unknown;
    await Promise.all(workers.map((w) => new Promise<void>((resolveWorker) => {
      const feed = (): void => {
        if (failure !== undefined || signal?.aborted || next >= todo.length) return resolveWorker();
        const t = todo[next++];
        const req: CheckRequest = { root: listing.root, kind: listing.kind, unit: t.unit, sig: t.sig, entries: t.entries };
        w.once('message', (rec: UnitRecord) => {
          try { onDone(rec, t.entries.length); } catch (e) { failure ??= e; }
          feed();
        });
        w.postMessage(req);
      };
      w.once('error', (e) => { failure ??= e; resolveWorker(); });
      feed();
    })));
    if (failure !== undefined) throw failure;
    throwIfCancelled(signal);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function openArchive(archive: string, out: string): Promise<ArchiveListing> {
  let st;
  try {
    st = statSync(archive);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdcError(`Archive not found: ${archive}`, 'Point paths.archive in idc.config.json (or the command argument) at the unpacked archive folder or the downloaded .zip.', 'NO_ARCHIVE');
    }
    throw new IdcError(`Cannot read the archive at ${archive}: ${describeFsError(e)}`, 'Check the path and its permissions.', 'ARCHIVE_UNREADABLE');
  }
  if (st.isDirectory()) {
    const place = placeIn(archive, out);
    if (place === 'same') throw new IdcError('The output folder is the archive folder itself.', 'Choose an output folder outside the raw archive (--out or paths.output): the archive is never written to.', 'OUT_IN_ARCHIVE');
    if (place === 'inside') {
      throw new IdcError(`The output folder ${out} is inside the archive ${archive}.`, 'Choose an output folder outside the raw archive (--out or paths.output): the archive is never written to.', 'OUT_IN_ARCHIVE');
    }
    return listDirectory(archive);
  }
  if (/\.zip$/i.test(archive)) {
    try {
      return await listZip(archive);
    } catch (e) {
      throw new IdcError(`${archive} is not a readable zip file: ${(e as Error).message}`, 'Download the archive again, or unpack it and point at the folder.', 'BAD_ZIP');
    }
  }
  throw new IdcError(`${archive} is neither a folder nor a .zip file.`, 'Point at the unpacked archive folder or the downloaded .zip.', 'BAD_ARCHIVE');
}

export function comparePatients(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Picks one copy per patch id: the shallowest path wins (the `<pid>/` tree over the zip's duplicate tree). */
function reconcile(records: UnitRecord[]): { rows: ManifestRow[]; issues: Issue[]; duplicates: Map<string, number> } {
  const issues: Issue[] = [];
  const duplicates = new Map<string, number>();
  const rows: ManifestRow[] = [];
  for (const rec of records) {
    issues.push(...rec.i);
    const byId = new Map<string, Candidate[]>();
    for (const c of rec.c) {
      const list = byId.get(c[0]);
      if (list) list.push(c); else byId.set(c[0], [c]);
    }
    for (const copies of byId.values()) {
      copies.sort((a, b) => depth(a[7]) - depth(b[7]) || (a[7] < b[7] ? -1 : 1));
      const keep = copies[0];
      for (const other of copies.slice(1)) {
        if (other[8] === keep[8] && other[9] === keep[9]) {
          const tree = other[7].split('/')[0];
          duplicates.set(tree, (duplicates.get(tree) ?? 0) + 1);
        } else {
          issues.push({ path: other[7], severity: 'skipped', reason: `conflicting copy of ${keep[7]} (different content); the first copy is used` });
        }
      }
      if (keep[10]) issues.push({ path: keep[7], severity: 'suspicious', reason: keep[10] });
      rows.push({ id: keep[0], patient: keep[1], x: keep[2], y: keep[3], label: keep[4], width: keep[5], height: keep[6], source: keep[7] });
    }
  }
  rows.sort((a, b) => comparePatients(a.patient, b.patient) || a.label - b.label || a.y - b.y || a.x - b.x);
  return { rows, issues, duplicates };
}

const depth = (p: string): number => p.split('/').length;

function buildReport(archive: string, listing: ArchiveListing, rows: ManifestRow[], issues: Issue[], duplicates: Map<string, number>): OrganizeReport {
  const per = new Map<string, PatientCounts>();
  let edge = 0;
  for (const r of rows) {
    let p = per.get(r.patient);
    if (!p) per.set(r.patient, (p = { patient: r.patient, negatives: 0, positives: 0, edgePatches: 0 }));
    if (r.label === 1) p.positives++; else p.negatives++;
    if (r.width < 50 || r.height < 50) { p.edgePatches++; edge++; }
  }
  const positives = rows.reduce((s, r) => s + r.label, 0);
  const dupTotal = [...duplicates.values()].reduce((s, n) => s + n, 0);
  return {
    version: 1, archive, kind: listing.kind, createdAt: new Date().toISOString(),
    totals: {
      files: listing.entries.length, patches: rows.length, negatives: rows.length - positives, positives, patients: per.size,
      skipped: issues.filter((i) => i.severity === 'skipped').length, suspicious: issues.filter((i) => i.severity === 'suspicious').length,
      duplicates: dupTotal, edgePatches: edge,
    },
    patients: [...per.values()].sort((a, b) => comparePatients(a.patient, b.patient)),
    duplicates: [...duplicates].map(([tree, files]) => ({ tree, files })),
    issues,
  };
}

interface Journal {
  done: Map<string, UnitRecord>;
  append(rec: UnitRecord): void;
  remove(): void;
}

/**
 * Append-only JSON-lines journal: one line per finished patient. A torn last line (crash
 * mid-write) is ignored, so the worst case after a kill is redoing one patient.
 */
function openJournal(dir: string, header: { archive: string; kind: string }, reset: boolean): Journal {
  const file = join(dir, JOURNAL_FILE);
  const headerLine = JSON.stringify({ journal: 1, ...header });
  const done = new Map<string, UnitRecord>();
  mkdirpOrExplain(dir);
  let lines: string[] = [];
  if (!reset && existsSync(file)) lines = readFileSync(file, 'utf8').split('\n');
  if (lines[0] === headerLine) {
    for (const line of lines.slice(1)) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as UnitRecord;
        done.set(rec.unit, rec);
      } catch { /* torn tail from an interrupted write */ }
    }
    // Rewrite without a torn tail so later appends start on a fresh line.
    replaceJournal(file, [headerLine, ...[...done.values()].map((r) => JSON.stringify(r))].join('\n') + '\n');
  } else {
    replaceJournal(file, headerLine + '\n');
  }
  return {
    done,
    append: (rec) => appendFileSyncExplained(file, JSON.stringify(rec) + '\n'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function replaceJournal(file: string, text: string): void {
  try {
    writeFileSync(file + '.tmp', text);
    renameSync(file + '.tmp', file);
  } catch (e) {
    rmSync(file + '.tmp', { force: true });
    throw wrapWriteError(e, file);
  }
}

/**
 * The reference notebook's `<out>/{0,1}/` layout, without moving anything: hard links
 * (copies when the archive is a zip or on another device). Existing files are kept.
 */
async function materializeRows(listing: ArchiveListing, out: string, rows: readonly ManifestRow[], mode: Materialize, progress: ProgressSink, signal?: AbortSignal): Promise<{ created: number; existing: number; mode: Materialize }> {
  for (const l of ['0', '1']) mkdirpOrExplain(join(out, l));
  const entries = new Map(listing.entries.map((e) => [e.rel, e]));
  const tick = throttled(progress);
  let created = 0, existing = 0, i = 0;
  for (const r of rows) {
    if ((i & 255) === 0) throwIfCancelled(signal);
    tick({ phase: 'organize.materialize', label: `Materializing (${mode})`, done: i++, total: rows.length, unit: 'files' });
    const dst = join(out, String(r.label), `${r.id}.png`);
    if (existsSync(dst)) { existing++; continue; }
    const tmp = `${dst}.tmp`;
    if (listing.kind === 'zip') {
      const entry = entries.get(r.source);
      if (!entry) throw new IdcError(`The manifest lists ${r.source}, which is not in the zip any more.`, 'Run "idc organize --force" to rebuild the manifest.', 'STALE_MANIFEST');
      const bytes = await listing.read(entry);
      try { writeFileSync(tmp, bytes); renameSync(tmp, dst); } catch (e) { throw wrapWriteError(e, dst); }
    } else {
      const src = join(listing.root, r.source);
      let linked = false;
      if (mode === 'link') {
        try { linkSync(src, dst); linked = true; } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw wrapWriteError(e, dst); }
      }
      if (!linked) {
        try { copyFileSync(src, tmp); renameSync(tmp, dst); } catch (e) { throw wrapWriteError(e, dst); }
      }
    }
    created++;
  }
  tick({ phase: 'organize.materialize', label: `Materializing (${mode})`, done: rows.length, total: rows.length, unit: 'files' });
  return { created, existing, mode };
}
