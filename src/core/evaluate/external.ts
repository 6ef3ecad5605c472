import { existsSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { IdcError } from '../errors';
import { baselinePatients } from '../baseline';
import { mkdirpOrExplain, wrapWriteError } from '../fsutil';
import { readManifest, readManifestWithHash } from '../manifest';
import { organize, MANIFEST_FILE, MANIFEST_META_FILE, type ManifestMeta, type OrganizeReport } from '../organize/organize';
import { comparePatientIds, groupPatients, readSplit, summarize, writeSplit, type SplitFile } from '../split';
import { prepareData, SPLIT_FILE, type PreparedData } from '../train/data';
import { dataOf, evaluateModel, inputConfig, resolveModelSource, type EvaluateOptions, type EvaluateResult, type ExternalData } from './evaluate';
import type { ExternalInfo } from './types';

/** `<output>/external/<name>/`: an external archive's manifest, split and patch cache. */
export const EXTERNAL_DIR = 'external';

export function externalDataDir(outputDir: string, name: string): string {
  return join(outputDir, EXTERNAL_DIR, name);
}

export interface ExternalEvaluateOptions extends Omit<EvaluateOptions, 'split' | 'external'> {
  /** Another labelled archive (folder or .zip) in the archive's layout; only read. */
  archive: string;
}

export interface ExternalEvaluateResult extends EvaluateResult { info: ExternalInfo; dataDir: string; organize: OrganizeReport }

/**
 * External validation in one go: organizes another labelled archive read-only into its own folder
 * under the output, puts every patient in "test", and evaluates the model on it with every output
 * evaluate writes, into `<output>/evals/<model>-on-<name>/test/` where the panels find it. A run's
 * thresholds (and temperature) are chosen on its own validation patients, as in deployment.
 */
export async function evaluateExternal(opts: ExternalEvaluateOptions): Promise<ExternalEvaluateResult> {
  const archive = resolve(opts.archive);
  if (!existsSync(archive)) {
    throw new IdcError(`Archive not found: ${archive}`, 'Give --archive the folder or .zip of a labelled archive in the <patient>/<0|1>/ layout.', 'NO_ARCHIVE');
  }
  // A missing run or model fails before anything is organized.
  const source = resolveModelSource(opts.outputDir, opts);
  const name = externalName(opts.outputDir, archive);
  const dataDir = externalDataDir(opts.outputDir, name);
  const report = await organizeExternal(archive, dataDir, opts);
  const { rows, hash } = await readManifestWithHash(join(dataDir, MANIFEST_FILE));
  await writeTestSplit(join(dataDir, SPLIT_FILE), rows, hash);

  const patients = [...new Set(rows.map((r) => r.patient))].sort(comparePatientIds);
  const seen = source.baseline ? { ids: baselinePatients(source.baseline) } : source.runId ? await seenPatients(opts.outputDir, source) : undefined;
  const overlap = seen ? patients.filter((p) => seen.ids.has(p)) : [];
  const own = isWorkspaceArchive(opts.outputDir, archive);
  const info: ExternalInfo = { name, archive, patients: patients.length, overlap };
  const parts: string[] = [];
  if (overlap.length || own) {
    if (own) parts.push(`The external archive is the workspace's own archive (${archive}).`);
    if (overlap.length) {
      parts.push(`${overlap.length} of the ${patients.length} patients (${overlap.slice(0, 10).join(', ')}${overlap.length > 10 ? ', …' : ''}) are in the training or validation split of ${source.baseline ? 'the baseline model' : `run ${source.runId}`}: the model may have been trained on them, so these numbers are optimistic.`);
    }
  }

  let validation: ExternalData['validation'];
  if (source.runId) {
    // The run's own validation patients fix the thresholds; without them evaluate chooses them on these patients (labelled optimistic).
    try {
      const data: PreparedData = await prepareData(opts.outputDir, inputConfig(opts.config, source), { ...dataOf(source, opts.cacheDir), onProgress: opts.onProgress, signal: opts.signal });
      const patientOf = new Map((await readManifest(join(opts.outputDir, MANIFEST_FILE))).map((r) => [r.id, r.patient]));
      validation = { data, patientOf };
    } catch (e) {
      if ((e as IdcError).code === 'CANCELLED') throw e;
      parts.push(`The validation patients of run ${source.runId} could not be read (${(e as Error).message}), so the data-driven thresholds are chosen on the external patients themselves.`);
    }
  }
  if (parts.length) info.warning = parts.join(' ');
  const label = source.runId ?? basename(source.evalRoot);
  const evalDir = join(opts.outputDir, 'evals', `${label}-on-${name}`, 'test');
  const r = await evaluateModel({ ...opts, split: 'test', external: { dataDir, evalDir, info, validation } });
  return { ...r, info, dataDir, organize: report };
}

/** The archive's folder name (without .zip); another archive of the same name gets name-2, name-3 … */
function externalName(outputDir: string, archive: string): string {
  const base = basename(archive).replace(/\.zip$/i, '').replace(/[^\w.-]/g, '_').replace(/^\.+/, '') || 'archive';
  for (let k = 1; ; k++) {
    const name = k === 1 ? base : `${base}-${k}`;
    const meta = readMeta(externalDataDir(outputDir, name));
    if (!meta || meta.archive === archive) return name;
  }
}

function readMeta(dir: string): ManifestMeta | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST_META_FILE), 'utf8')) as ManifestMeta;
  } catch {
    return undefined;
  }
}

function isWorkspaceArchive(outputDir: string, archive: string): boolean {
  return readMeta(outputDir)?.archive === archive;
}

/**
 * organize() into dataDir. The first time it works in a hidden staging folder (resumed after an
 * interruption) renamed into place only when the archive holds a valid patch, so a bad archive
 * leaves nothing behind.
 */
async function organizeExternal(archive: string, dataDir: string, opts: ExternalEvaluateOptions): Promise<OrganizeReport> {
  const parent = dirname(dataDir);
  const hadParent = existsSync(parent);
  const fresh = !existsSync(dataDir);
  const staging = join(parent, `.${basename(dataDir)}.organizing`);
  const out = fresh ? staging : dataDir;
  const cleanUp = (): void => {
    if (fresh) rmSync(staging, { recursive: true, force: true });
    if (!hadParent) try { if (!readdirSync(parent).length) rmdirSync(parent); } catch { /* not ours to remove */ }
  };
  mkdirpOrExplain(out);
  let report: OrganizeReport;
  try {
    report = (await organize({ archive, out, onProgress: opts.onProgress, signal: opts.signal })).report;
  } catch (e) {
    // A cancelled run keeps its staging journal for the next try; anything else leaves nothing.
    if ((e as IdcError).code !== 'CANCELLED') cleanUp();
    throw e;
  }
  if (report.totals.patches === 0) {
    cleanUp();
    const why = report.issues.slice(0, 3).map((i) => `${i.path}: ${i.reason}`).join('; ');
    throw new IdcError(
      `No valid patch in ${archive}: ${report.totals.files} file${report.totals.files === 1 ? '' : 's'}, none a readable patch in the <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png layout${why ? ` (${why}${report.issues.length > 3 ? '; …' : ''})` : ''}.`,
      'Point --archive at a labelled archive in that layout (a folder or the Kaggle .zip); nothing was written.',
      'EMPTY_MANIFEST',
    );
  }
  if (fresh) {
    try {
      renameSync(staging, dataDir);
    } catch (e) {
      throw wrapWriteError(e, dataDir);
    }
  }
  return report;
}

/** Every patient in test, written only when the manifest changed (an unchanged split keeps the patch cache). */
async function writeTestSplit(file: string, rows: Parameters<typeof groupPatients>[0], hash: string): Promise<void> {
  const patients = groupPatients(rows);
  const ids = patients.map((p) => p.id);
  try {
    const old = await readSplit(file);
    if (old.manifestHash === hash && old.patients.test.join() === ids.join() && !old.patients.train.length && !old.patients.val.length) return;
  } catch { /* none yet, or unreadable: write it */ }
  const split: SplitFile = {
    version: 1, seed: 0, ratios: [0, 0, 1], stratify: false, manifestHash: hash, createdAt: new Date().toISOString(),
    patients: { train: [], val: [], test: ids },
    summary: { train: summarize([]), val: summarize([]), test: summarize(patients) },
  };
  await writeSplit(file, split);
}

/** The run's training and validation patients: its own split (a cross-validation fold) or the workspace's. */
async function seenPatients(outputDir: string, source: { modelDir: string; runId?: string }): Promise<{ ids: Set<string> } | undefined> {
  const own = dataOf(source, undefined).splitFile;
  const file = own ?? join(outputDir, SPLIT_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const split = await readSplit(file);
    return { ids: new Set([...split.patients.train, ...split.patients.val]) };
  } catch {
    return undefined;
  }
}
