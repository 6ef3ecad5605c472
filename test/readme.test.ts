import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_DOC_START, withConfigReference } from '../src/core/config-doc';

const ROOT = join(__dirname, '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

test('docs/configuration.md config reference matches the schema (run "npm run docs" after editing the schema)', () => {
  const doc = read('docs/configuration.md');
  assert.equal(doc, withConfigReference(doc));
});

test('the config reference lives in docs/configuration.md only, not in the README', () => {
  assert.ok(!read('README.md').includes(CONFIG_DOC_START), 'README.md still holds the generated config reference');
});

test('README Quick start names the commands that exist in package.json', () => {
  const readme = read('README.md');
  const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
  const start = readme.indexOf('## Quick start');
  assert.ok(start >= 0, 'README has no "## Quick start" section');
  const end = readme.indexOf('\n## ', start + 1);
  const quick = readme.slice(start, end < 0 ? undefined : end);
  for (const m of quick.matchAll(/npm run (\w[\w:-]*)/g)) assert.ok(scripts[m[1]], `npm run ${m[1]} is not a script`);
  assert.match(quick, /npm ci && npm run demo/);
  assert.match(quick, /npm test/);
});
