/**
 * The linux-x64 .vsix (scripts/package-targets.mjs) in a real VS Code: it carries Dawn for its
 * platform only, the installed extension resolves Dawn from its own folder, and Train Model with
 * engine.backend "webgpu" trains one epoch on Mesa's lavapipe (scripts/install-lavapipe.sh).
 * Skipped without lavapipe unless IDC_REQUIRE_WEBGPU=1 (CI sets it and installs lavapipe).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  ROOT, e2eEnv, extensionHostErrors, extensionHostLogs, keepLogs, launchBrowser, openWorkbench, runCommand, screenshot,
  startCodeServer, tinyConfig, sleep, type CodeServer, type E2eEnv, idcCli,
} from './harness';

const TARGET = 'linux-x64';
const VSIX = join(ROOT, 'dist', `idc-inspector-${TARGET}.vsix`);
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';

const noLavapipe = process.platform !== 'linux' || process.arch !== 'x64' ? `the ${TARGET} package needs a ${TARGET} machine`
  : existsSync(LAVAPIPE) ? undefined : `${LAVAPIPE} is missing: run scripts/install-lavapipe.sh`;
if (noLavapipe && process.env.IDC_REQUIRE_WEBGPU === '1') throw new Error(`IDC_REQUIRE_WEBGPU=1 but ${noLavapipe}`);
const skip = noLavapipe ? `WebGPU unavailable: ${noLavapipe}` : false;

const home = mkdtempSync(join(tmpdir(), 'idc-e2e-vsix-'));
const workspace = join(home, 'workspace');
const out = join(workspace, 'idc-output');

let env: E2eEnv;
let server: CodeServer;
let browser: Browser;
let page: Page;

/** The installed extension's folder (publisher.name-version-target). */
function installedExtension(): string {
  const dir = join(home, 'extensions');
  const found = readdirSync(dir).find((d) => d.startsWith('idc-inspector.idc-inspector-'));
  assert.ok(found, `no idc-inspector folder in ${dir}: ${readdirSync(dir).join(', ')}`);
  return join(dir, found);
}

before(async () => {
  if (skip) return;
  env = e2eEnv();
  // The target package of the bundles in dist/ (npm run test:e2e builds them with npm run package).
  const pack = spawnSync(process.execPath, [join(ROOT, 'scripts', 'package-targets.mjs'), TARGET], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, `package-targets.mjs ${TARGET} failed:\n${pack.stdout}${pack.stderr}`);

  // Dataset prepared with the CLI: the palette's organize and split are pipeline.test.ts's part.
  const cli = (...args: string[]): void => idcCli(workspace, ...args);
  mkdirSync(workspace, { recursive: true });
  const config = { ...tinyConfig({ epochs: 1, stepsPerEpoch: 8 }, 0), engine: { backend: 'webgpu' } };
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(config, null, 2) + '\n');
  cli('synth', join(workspace, 'data', 'archive'), '--patients', '6', '--seed', '5');
  cli('organize');
  cli('split');

  // Mesa wants a runtime folder; the opt-in lets an explicit webgpu run on a software adapter.
  process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'idc-xdg-'));
  process.env.IDC_ALLOW_SOFTWARE_ADAPTER = '1';
  server = await startCodeServer(env, home, workspace, {}, VSIX);
  browser = await launchBrowser(env);
  page = await openWorkbench(browser, server.url);
});

after(async () => {
  if (page) await screenshot(page, 'vsix-final').catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  if (server) keepLogs(server.userDataDir);
});

test(`the installed ${TARGET} extension holds Dawn for ${TARGET} only`, { skip }, () => {
  const wg = join(installedExtension(), 'dist', 'node_modules', 'webgpu');
  assert.deepEqual(readdirSync(join(wg, 'dist')), [TARGET]);
  assert.ok(existsSync(join(wg, 'dist', TARGET, 'dawn.node')), 'dawn.node is missing');
  assert.ok(existsSync(join(installedExtension(), 'dist', 'node_modules', '@tensorflow', 'tfjs-backend-webgpu', 'package.json')));
});

test('Dawn loads from the installed extension under code-server\'s Node and finds lavapipe', { skip }, () => {
  const ext = installedExtension();
  // Resolved from dist/server.js as the language server and its job processes resolve it.
  const script = `
    const { createRequire } = require('node:module');
    const { pathToFileURL } = require('node:url');
    const r = createRequire(${JSON.stringify(join(ext, 'dist', 'server.js'))});
    (async () => {
      const resolved = r.resolve('webgpu');
      const { create } = await import(pathToFileURL(resolved).href);
      const adapter = await create([]).requestAdapter();
      const { WebGPUBackend } = r('@tensorflow/tfjs-backend-webgpu');
      console.log(JSON.stringify({ resolved, adapter: adapter && adapter.info.description, backend: typeof WebGPUBackend }));
      process.exit(0);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(env.NODE24, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { resolved: string; adapter: string | null; backend: string };
  assert.ok(got.resolved.startsWith(join(ext, 'dist', 'node_modules', 'webgpu')), got.resolved);
  assert.match(String(got.adapter), /llvmpipe/);
  assert.equal(got.backend, 'function');
});

/** The IDC log channel's text (it holds Check GPU Setup's report and the jobs' lines). */
function idcLog(): string {
  return extensionHostLogs(server.userDataDir).filter((f) => /IDC/.test(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
}

test('IDC: Check GPU Setup finds webgpu and tfjs-backend-webgpu inside the extension', { skip }, async () => {
  await runCommand(page, 'IDC: Check GPU Setup');
  const deadline = Date.now() + 90_000;
  while (!/GPU setup check/.test(idcLog())) {
    if (Date.now() > deadline) throw new Error(`no GPU setup report in the IDC log: ${extensionHostLogs(server.userDataDir).join(', ')}`);
    await sleep(500);
  }
  await screenshot(page, 'vsix-check-gpu');
  const report = idcLog();
  assert.match(report, /✓ webgpu 0\.6\.\d+ installed/);
  assert.match(report, /✓ @tensorflow\/tfjs-backend-webgpu 4\.22\.0 installed/);
});

test('Train Model with engine.backend "webgpu" trains one epoch on lavapipe', { skip, timeout: 600_000 }, async (t) => {
  await runCommand(page, 'IDC: Train Model');
  const runs = join(out, 'runs');
  const refusal = page.locator('.notifications-toasts .notification-toast', { hasText: /webgpu backend/i }).first();
  const deadline = Date.now() + 480_000;
  let history: string[] = [];
  for (;;) {
    const done = existsSync(runs) ? readdirSync(runs).find((id) => existsSync(join(runs, id, 'model', 'model.json'))) : undefined;
    if (done) {
      history = readFileSync(join(runs, done, 'history.jsonl'), 'utf8').trim().split('\n');
      const run = JSON.parse(readFileSync(join(runs, done, 'run.json'), 'utf8')) as { backend: string; status: string };
      assert.match(run.backend, /^webgpu/);
      assert.equal(run.status, 'finished');
      break;
    }
    if (await refusal.count()) {
      await screenshot(page, 'vsix-webgpu-refused');
      throw new Error(`the job refused webgpu on lavapipe: ${await refusal.innerText()}`);
    }
    if (Date.now() > deadline) {
      await screenshot(page, 'vsix-webgpu-timeout');
      throw new Error(`no finished run in ${runs} after 8 minutes`);
    }
    await sleep(500);
  }
  await screenshot(page, 'vsix-webgpu-trained');
  assert.equal(history.length, 1);
  const epoch = JSON.parse(history[0]) as { loss: number; val_auc: number };
  assert.ok(Number.isFinite(epoch.loss), `loss ${epoch.loss}`);
  assert.ok(epoch.val_auc >= 0 && epoch.val_auc <= 1, `val_auc ${epoch.val_auc}`);
  assert.deepEqual(extensionHostErrors(server.userDataDir), []);
});
