import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

/** Under tsx there is no dist/trainer.worker.js: bundles it into `dir` the way the build script does. */
export function bundleTrainerWorker(dir: string): string {
  const file = join(dir, 'trainer.worker.js');
  buildSync({ entryPoints: [resolve(__dirname, '../../src/core/train/trainer.worker.ts')], outfile: file, bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });
  return file;
}
