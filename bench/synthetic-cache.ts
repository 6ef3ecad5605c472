/**
 * A synthetic archive organized, split by patient and cached (default config: Macenko), for the
 * benchmarks that time training from the patch cache (bench/torch-rows.ts, bench/gpu/bench.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticArchive } from '../src/core/synth/synth';
import { organize } from '../src/core/organize/organize';
import { readManifest, manifestHash } from '../src/core/manifest';
import { splitByPatient, writeSplit } from '../src/core/split';
import type { IdcConfig } from '../src/core/config';
import { prepareData } from '../src/core/train/data';
import type { CacheReader } from '../src/core/cache';

export interface SyntheticCache { train: CacheReader; dispose(): void }

export async function syntheticCache(patients: number, config: IdcConfig): Promise<SyntheticCache> {
  const root = mkdtempSync(join(tmpdir(), 'idc-bench-cache-'));
  try {
    const out = join(root, 'out');
    await generateSyntheticArchive({ out: join(root, 'archive'), patients, seed: 3 });
    await organize({ archive: join(root, 'archive'), out });
    const rows = await readManifest(join(out, 'manifest.csv'));
    await writeSplit(join(out, 'split.json'), splitByPatient(rows, { ratios: [0.7, 0.15, 0.15], seed: 1, stratify: false, manifestHash: manifestHash(readFileSync(join(out, 'manifest.csv'), 'utf8')) }));
    const train = (await prepareData(out, config)).open('train');
    return { train, dispose: () => { train.close(); rmSync(root, { recursive: true, force: true }); } };
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}
