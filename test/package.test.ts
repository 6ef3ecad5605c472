import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import yauzl from 'yauzl';
import { tempDir } from './helpers/fixtures';

const ROOT = resolve(__dirname, '..');

function zipNames(file: string): Promise<string[]> {
  return new Promise((res, rej) => yauzl.open(file, { lazyEntries: true }, (err, zf) => {
    if (err) return rej(err);
    const names: string[] = [];
    zf!.on('entry', (e: yauzl.Entry) => { names.push(e.fileName); zf!.readEntry(); });
    zf!.on('end', () => res(names));
    zf!.readEntry();
  }));
}

test('vsce packages the bundles offline into a .vsix without sources or node_modules', async () => {
  const out = join(tempDir(), 'idc.vsix');
  const vsce = join(ROOT, 'node_modules', '.bin', 'vsce');
  const r = spawnSync(vsce, ['package', '--no-dependencies', '--no-rewrite-relative-links', '--out', out], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const names = await zipNames(out);
  for (const f of ['extension/package.json', 'extension/dist/extension.js', 'extension/dist/cli.js', 'extension/dist/check.worker.js', 'extension/schema/idc.config.schema.json', 'extension/engines/torch/idc_torch/__main__.py', 'extension/engines/torch/idc_torch/model.py']) {
    assert.ok(names.includes(f), `${f} missing from the vsix`);
  }
  assert.ok(!names.some((n) => n.startsWith('extension/src/') || n.includes('node_modules/') || n.endsWith('.map') || n.startsWith('extension/test/')), names.join('\n'));
  // The README is the extension's details page: it ships with the images it shows, not the rest of docs/.
  assert.ok(names.includes('extension/readme.md'), 'README.md (vsce names it readme.md) missing from the vsix');
  assert.ok(!names.some((n) => n.startsWith('extension/docs/') && !/^extension\/docs\/images\/[^/]+\.png$/.test(n)), names.filter((n) => n.startsWith('extension/docs/')).join('\n'));
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const m of readme.matchAll(/!\[[^\]]*\]\((docs\/images\/[^)\s]+\.png)\)/g)) {
    if (existsSync(join(ROOT, m[1]))) assert.ok(names.includes(`extension/${m[1]}`), `${m[1]} (shown by the README) missing from the vsix`);
  }
  // The baseline model ships, so scoring works before anything is trained; the package stays small.
  for (const f of ['baseline.json', 'MODEL_CARD.md', 'config.json', 'model/model.json', 'model/weights.bin']) assert.ok(names.includes(`extension/models/baseline/${f}`), `models/baseline/${f} missing from the vsix`);
  const mb = statSync(out).size / 1e6;
  assert.ok(mb < 5, `the universal .vsix is ${mb.toFixed(2)} MB; the budget is 5 MB`);
  rmSync(out);
});
