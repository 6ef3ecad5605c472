import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticArchive } from '../../src/core/synth/synth';
import { organize } from '../../src/core/organize/organize';
import { splitByPatient, writeSplit } from '../../src/core/split';
import { readManifest, manifestHash } from '../../src/core/manifest';
import { defaultConfig, type IdcConfig } from '../../src/core/config';
import { tempDir } from './fixtures';

/** A small synthetic archive, organized and split: the starting point of training tests. */
export async function preparedOutput(patients = 6, seed = 5, ratios: [number, number, number] = [0.5, 0.25, 0.25]): Promise<{ root: string; out: string }> {
  const root = tempDir('idc-pipe-');
  const out = join(root, 'out');
  await generateSyntheticArchive({ out: join(root, 'archive'), patients, seed });
  await organize({ archive: join(root, 'archive'), out });
  const rows = await readManifest(join(out, 'manifest.csv'));
  await writeSplit(join(out, 'split.json'), splitByPatient(rows, { ratios, seed: 1, stratify: false, manifestHash: manifestHash(readFileSync(join(out, 'manifest.csv'), 'utf8')) }));
  return { root, out };
}

export function tinyTrainConfig(over: (c: IdcConfig) => void = () => {}): IdcConfig {
  const c = defaultConfig();
  c.engine.backend = 'wasm';
  c.train.epochs = 3;
  c.train.stepsPerEpoch = 4;
  c.train.batchSize = 16;
  c.model.filters = [8, 16];
  c.model.dense = [16];
  // Patches as scanned unless a test asks for Macenko (the default), so pixels stay predictable.
  c.data.stainNormalization = 'none';
  over(c);
  return c;
}
