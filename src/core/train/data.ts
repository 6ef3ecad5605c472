import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError } from '../errors';
import { readManifestWithHash } from '../manifest';
import { readSplit, type SplitFile, type SplitName } from '../split';
import { MANIFEST_FILE, MANIFEST_META_FILE, type ManifestMeta } from '../organize/organize';
import { buildCache, openCache, type CacheInfo, type CacheReader } from '../cache';
import type { IdcConfig } from '../config';
import type { ProgressSink } from '../progress';

export const SPLIT_FILE = 'split.json';

export interface PreparedData {
  split: SplitFile;
  cache: CacheInfo;
  manifestHash: string;
  open(name: SplitName): CacheReader;
}

/**
 * Manifest → split → patch cache, checking that each matches the one before it: a split of an
 * older manifest, or a cache of another split, is caught here instead of training on it.
 */
export async function prepareData(outputDir: string, config: IdcConfig, opts: { cacheDir?: string; onProgress?: ProgressSink; signal?: AbortSignal } = {}): Promise<PreparedData> {
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
  const split = await readSplit(join(outputDir, SPLIT_FILE));
  if (split.manifestHash !== hash) {
    throw new IdcError(`${join(outputDir, SPLIT_FILE)} was made from an older manifest.`, 'Run "idc split" again.', 'STALE_SPLIT');
  }
  const cacheDir = opts.cacheDir ?? (config.data.cacheDir ? config.data.cacheDir : undefined);
  const cache = await buildCache({
    outputDir, split, rows, manifestHash: hash, archive: meta.archive, archiveKind: meta.kind, edgePatches: config.data.edgePatches,
    cacheDir, onProgress: opts.onProgress, signal: opts.signal,
  });
  return {
    split, cache, manifestHash: hash,
    open: (name) => openCache(cache.cacheDir, name, { expect: { manifestHash: hash, split, edgePatches: config.data.edgePatches } }),
  };
}
