import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withConfigReference } from '../src/core/config-doc';

test('README config reference matches the schema (run "npm run docs" after editing the schema)', () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  assert.equal(readme, withConfigReference(readme));
});

test('README Quick start names the commands that exist in package.json', () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const scripts = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).scripts as Record<string, string>;
  const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## The command line'));
  for (const m of quick.matchAll(/npm run (\w[\w:-]*)/g)) assert.ok(scripts[m[1]], `npm run ${m[1]} is not a script`);
  assert.match(quick, /npm test/);
});
