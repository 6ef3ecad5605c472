/**
 * Patch-cache benchmark: node --import tsx bench/cache.ts <archive> <outputDir> [--threads N] [--edge resize|pad|skip] [--keep]
 *
 * Organizes the archive (a no-op when <outputDir> already holds its manifest), splits it with the
 * default ratios, builds the cache from scratch (--keep: reuse what is there) and times random and
 * shuffled-epoch reads. Under tsx there is no dist/decode.worker.js, so the worker is bundled to a
 * temp folder first, as the build script would.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir, availableParallelism } from 'node:os';
import { buildSync } from 'esbuild';
import { organize, MANIFEST_FILE, MANIFEST_META_FILE, type ManifestMeta } from '../src/core/organize/organize';
import { readManifest } from '../src/core/manifest';
import { splitByPatient } from '../src/core/split';
import { buildCache, openCache, epochOrder, type EdgeMode } from '../src/core/cache';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
  const threads = Number(flag('--threads') ?? availableParallelism());
  const edge = (flag('--edge') ?? 'resize') as EdgeMode;
  const keep = args.includes('--keep') ? (args.splice(args.indexOf('--keep'), 1), true) : false;
  const [archive, outputDir] = args.map((a) => resolve(a));
  if (!archive || !outputDir) {
    console.error('usage: node --import tsx bench/cache.ts <archive> <outputDir> [--threads N] [--edge resize|pad|skip] [--keep]');
    process.exit(2);
  }

  let t = performance.now();
  const org = await organize({ archive, out: outputDir });
  console.log(`organize: ${org.report.totals.patches} patches, ${org.upToDate ? 'up to date' : 'built'} in ${sec(t)}`);
  const rows = await readManifest(join(outputDir, MANIFEST_FILE));
  const meta = JSON.parse(readFileSync(join(outputDir, MANIFEST_META_FILE), 'utf8')) as ManifestMeta;
  const split = splitByPatient(rows, { ratios: [0.7, 0.15, 0.15], seed: 42, stratify: true, manifestHash: meta.manifestHash });

  const workerDir = mkdtempSync(join(tmpdir(), 'idc-bench-worker-'));
  const workerFile = join(workerDir, 'decode.worker.js');
  buildSync({ entryPoints: [resolve(__dirname, '../src/core/cache/decode.worker.ts')], outfile: workerFile, bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });

  const opts = { outputDir, split, rows, manifestHash: meta.manifestHash, archive: meta.archive, archiveKind: meta.kind, edgePatches: edge, workerFile, threads };
  t = performance.now();
  const info = await buildCache({ ...opts, force: !keep });
  const s = (performance.now() - t) / 1000;
  console.log(`cache build (${meta.kind}, ${threads ? `${threads} worker threads` : 'this thread'}, ${edge}): ${info.decoded} patches in ${s.toFixed(2)} s = ${Math.round(info.decoded / s)} files/s`);
  console.log(`  counts ${JSON.stringify(info.counts)}, failed ${info.failed.length}, edge skipped ${info.skippedEdge.length}`);
  t = performance.now();
  const again = await buildCache(opts);
  console.log(`second build: upToDate=${again.upToDate} in ${sec(t)}`);

  const bs = 64;
  for (const [split, memory] of [['train', false], ['val', true]] as const) {
    const r = openCache(info.cacheDir, split, { memory });
    const where = `${split}, ${r.size} patches, ${memory ? 'in memory' : 'file + positioned reads'}`;
    const order = epochOrder(r.size, 1, 0);
    const n = Math.min(400, Math.floor(r.size / bs));
    const out = new Uint8Array(bs * 7500);
    for (let rep = 0; rep < 2; rep++) {
      t = performance.now();
      for (let b = 0; b < n; b++) r.readBatch(order.subarray(b * bs, (b + 1) * bs), out);
      const ms = (performance.now() - t) / n;
      console.log(`${where}: readBatch of ${bs} random rows ${ms.toFixed(3)} ms (${Math.round((bs / ms) * 1000)} patches/s)`);
    }
    for (const prefetch of memory ? [false] : [false, true]) {
      t = performance.now();
      let seen = 0;
      for await (const batch of r.batches({ batchSize: bs, shuffle: true, seed: 1, epoch: 2, prefetch })) {
        seen += batch.indices.length;
        if (batch.batch + 1 >= n) break;
      }
      console.log(`${where}: batches()${prefetch ? ' with async prefetch' : ''} ${Math.round(seen / ((performance.now() - t) / 1000))} patches/s`);
    }
    r.close();
  }
  rmSync(workerDir, { recursive: true, force: true });
}

const sec = (t: number) => `${((performance.now() - t) / 1000).toFixed(2)} s`;

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
