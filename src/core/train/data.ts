import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError } from '../errors';
import { readManifestWithHash } from '../manifest';
import { readSplit, SPLIT_NAMES, type SplitFile, type SplitName } from '../split';
import { MANIFEST_FILE, MANIFEST_META_FILE, type ManifestMeta } from '../organize/organize';
import { buildCache, openCache, readCacheManifest, type CacheInfo, type CacheReader } from '../cache';
import { ensureStainTable, type StainNormalization, type StainTable } from '../cache/stains';
import type { IdcConfig } from '../config';
import type { ProgressSink } from '../progress';

export const SPLIT_FILE = 'split.json';

export interface PreparedData {
  split: SplitFile;
  cache: CacheInfo;
  manifestHash: string;
  /** data.stainNormalization this data was prepared with. */
  stainNormalization: StainNormalization;
  /** Per split (when normalizing): each patient's stain estimate, or why it has none. */
  stains: Partial<Record<SplitName, StainTable>>;
  /** Rows normalized as config.data.stainNormalization says; readRawBatch for what people look at. */
  open(name: SplitName): CacheReader;
}

/**
 * Manifest → split → patch cache, checking that each matches the one before it: a split of an
 * older manifest, or a cache of another split, is caught here instead of training on it.
 */
export async function prepareData(outputDir: string, config: IdcConfig, opts: { cacheDir?: string; splitFile?: string; onProgress?: ProgressSink; signal?: AbortSignal } = {}): Promise<PreparedData> {
  const manifestFile = join(outputDir, MANIFEST_FILE);
  const { rows, hash } = await readManifestWithHash(manifestFile);
  let meta: ManifestMeta;
  try {
    meta = JSON.parse(readFileSync(join(outputDir, MANIFEST_META_FILE), 'utf8')) as ManifestMeta;
  } catch {
    throw new IdcError(`${join(outputDir, MANIFEST_META_FILE)} is missing or unreadable.`, 'Run "idc organize" again.', 'NO_MANIFEST');
  }
  if (meta.manifestHash !== hash) {
    throw new IdcError(`${manifestFile} was changed after organize wrote it.`, 'Run "idc organize --force" to rebuild it from the archive.', 'STALE_MANIFEST');
  }
  const splitFile = opts.splitFile ?? join(outputDir, SPLIT_FILE);
  const split = await readSplit(splitFile);
  if (split.manifestHash !== hash) {
    throw new IdcError(`${splitFile} was made from an older manifest.`, opts.splitFile ? 'Run the cross-validation again with a new --id.' : 'Run "idc split" again.', 'STALE_SPLIT');
  }
  const cacheDir = opts.cacheDir ?? (config.data.cacheDir ? config.data.cacheDir : undefined);
  const cache = await buildCache({
    outputDir, split, rows, manifestHash: hash, archive: meta.archive, archiveKind: meta.kind, edgePatches: config.data.edgePatches,
    cacheDir, onProgress: opts.onProgress, signal: opts.signal,
  });
  const expect = { manifestHash: hash, split, edgePatches: config.data.edgePatches };
  const mode: StainNormalization = config.data.stainNormalization ?? 'none';
  const stains: Partial<Record<SplitName, StainTable>> = {};
  if (mode === 'macenko') {
    const m = readCacheManifest(cache.cacheDir);
    for (const name of SPLIT_NAMES) {
      if (!m.splits[name] || m.splits[name].count === 0) continue;
      let raw: CacheReader | undefined;
      try {
        stains[name] = await ensureStainTable(cache.cacheDir, name, m.splits[name], () => (raw = openCache(cache.cacheDir, name, { expect })), opts);
      } finally {
        raw?.close();
      }
    }
  }
  return {
    split, cache, manifestHash: hash, stainNormalization: mode, stains,
    open: (name) => openCache(cache.cacheDir, name, { expect, stains: stains[name] }),
  };
}

/**
 * A run with patients of its own (a cross-validation fold) keeps its split.json and patch cache in
 * its folder; training, resuming, evaluating and Grad-CAM then read those, not the workspace split.
 */
export function runData(runDir: string): { splitFile: string; cacheDir: string } | undefined {
  const splitFile = join(runDir, SPLIT_FILE);
  return existsSync(splitFile) ? { splitFile, cacheDir: join(runDir, 'cache') } : undefined;
}

/**
 * The config a run's data must be read with: its own stain normalization (from its config.json),
 * whatever the workspace config says now, so a model always sees inputs like those it learned on.
 */
export function configForRun(config: IdcConfig, runConfigFile: string): IdcConfig {
  let mode: StainNormalization = 'none';
  try {
    const run = JSON.parse(readFileSync(runConfigFile, 'utf8')) as { data?: { stainNormalization?: StainNormalization } };
    mode = run.data?.stainNormalization ?? 'none';
  } catch { /* a run without its config.json predates the setting */ }
  return mode === config.data.stainNormalization ? config : { ...config, data: { ...config.data, stainNormalization: mode } };
}
