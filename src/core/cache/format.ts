import { createHash } from 'node:crypto';
import type { SplitFile, SplitName } from '../split';
import type { EdgeMode } from './pixels';

/** Bump when the files' layout or meaning changes: older caches are then rebuilt. */
export const CACHE_VERSION = 1;
export const CACHE_FILE = 'cache.json';

export const dataFile = (split: SplitName): string => `${split}.u8`;
export const labelsFile = (split: SplitName): string => `${split}.labels.u8`;
export const idsFile = (split: SplitName): string => `${split}.ids.json`;
/** Per-patient stain normalization of a split (only when data.stainNormalization asks for it). */
export const stainsFile = (split: SplitName): string => `${split}.stains.json`;
/** Written after a split's data files: marks the split complete, so a later build can keep it. */
export const splitMetaFile = (split: SplitName): string => `${split}.json`;

/** A patch that is in the manifest but not in the cache, and why. */
export interface CacheFailure {
  split: SplitName;
  id: string;
  source: string;
  reason: string;
}

/** How train, evaluate and the Dataset panel name a patch left out of the cache. */
export function describeCacheFailure(f: Pick<CacheFailure, 'split' | 'source' | 'reason'>): string {
  return `patch ${f.source} (${f.split} split) could not be decoded and is left out: ${f.reason}`;
}

export interface EdgeSkip {
  split: SplitName;
  id: string;
  width: number;
  height: number;
}

/** One split's part of the cache (also `<split>.json`). */
export interface SplitCacheMeta {
  version: number;
  split: SplitName;
  /** Identity of what was cached: manifest, this split's patients, edge mode, cache version. */
  key: string;
  count: number;
  positives: number;
  skippedEdge: EdgeSkip[];
  failed: CacheFailure[];
}

/** cache.json: written last, so its presence means every split listed is complete. */
export interface CacheManifest {
  version: number;
  /** What the files hold: count x 50 x 50 x 3 uint8 RGB, row-major HWC. */
  layout: { height: number; width: number; channels: number; dtype: 'uint8'; order: 'NHWC'; color: 'RGB' };
  manifestHash: string;
  splitHash: string;
  edgePatches: EdgeMode;
  archive: string;
  archiveKind: 'dir' | 'zip';
  createdAt: string;
  splits: Record<SplitName, SplitCacheMeta>;
}

/** Identity of a split: its patient lists only (seed, ratios and dates do not change the rows). */
export function splitHash(split: Pick<SplitFile, 'patients'>): string {
  const h = createHash('sha256');
  for (const name of ['train', 'val', 'test'] as const) h.update(`${name}:${[...split.patients[name]].sort().join(',')}\n`);
  return h.digest('hex').slice(0, 16);
}

export function splitKey(manifestHash: string, split: SplitName, patients: readonly string[], edge: EdgeMode): string {
  return createHash('sha256').update(`v${CACHE_VERSION}\n${manifestHash}\n${split}\n${edge}\n${[...patients].sort().join(',')}`).digest('hex').slice(0, 16);
}
