/**
 * The extension in a real VS Code (code-server + Chromium): the palette drives Organize → Split →
 * Train → Evaluate on a small synthetic archive, then a broken config must show a problem.
 * Run with `npm run test:e2e` (it packages the .vsix and installs code-server first).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  ROOT, VSIX, e2eEnv, extensionHostErrors, keepLogs, launchBrowser, openWorkbench, runCommand, screenshot,
  startCodeServer, tinyConfig, waitForFile, sleep, type CodeServer,
} from './harness';

const home = mkdtempSync(join(tmpdir(), 'idc-e2e-'));
const workspace = join(home, 'workspace');
const out = join(workspace, 'idc-output');

const config = tinyConfig({ epochs: 3, stepsPerEpoch: 60 }, 4);

let server: CodeServer;
let browser: Browser;
let page: Page;

before(async () => {
  assert.ok(existsSync(VSIX), `${VSIX} is missing: run "npm run package" first (npm run test:e2e does).`);
  const env = e2eEnv();
  const synth = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'synth', join(workspace, 'data', 'archive'), '--patients', '6', '--seed', '11', '-q'], { encoding: 'utf8' });
  assert.equal(synth.status, 0, synth.stderr);
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(config, null, 2) + '\n');
  server = await startCodeServer(env, home, workspace);
  browser = await launchBrowser(env);
  page = await openWorkbench(browser, server.url);
});

after(async () => {
  if (page) await screenshot(page, 'final').catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  if (server) keepLogs(server.userDataDir);
});

/** Waits until the status bar's IDC item reads idle again (the job ended). */
async function statusBarIdle(timeoutMs: number): Promise<string> {
  const item = page.locator('.statusbar-item', { hasText: 'IDC:' }).first();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await item.innerText().catch(() => '')).trim();
    if (/IDC: idle/.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`status bar still says "${text}"`);
    await sleep(300);
  }
}

/** A notification toast holding `text`, with a button labelled `button`. */
async function toastWithButton(text: string | RegExp, button: string): Promise<void> {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await toast.waitFor({ timeout: 30_000 });
  assert.ok(await toast.getByRole('button', { name: button }).count() > 0, `no "${button}" on: ${await toast.innerText()}`);
}

test('a command that needs a dataset says so and offers the fix', async () => {
  await runCommand(page, 'IDC: Train Model');
  await toastWithButton('no dataset yet', 'Organize Raw Archive');
  await screenshot(page, '00-no-dataset');
  await runCommand(page, 'Notifications: Clear All Notifications');
});

test('Organize Raw Archive writes the manifest and reports it', async () => {
  await runCommand(page, 'IDC: Organize Raw Archive');
  await waitForFile(join(out, 'manifest.csv'), 120_000, page);
  await statusBarIdle(60_000);
  const rows = readFileSync(join(out, 'manifest.csv'), 'utf8').trim().split('\n').length - 1;
  assert.ok(rows > 100, `${rows} manifest rows`);
  await page.locator('.notifications-toasts .notification-toast', { hasText: 'Organize raw archive done' }).waitFor({ timeout: 30_000 });
  await screenshot(page, '01-organized');
});

test('Split by Patient writes split.json without overlap', async () => {
  await runCommand(page, 'IDC: Split by Patient');
  await waitForFile(join(out, 'split.json'), 60_000, page);
  await statusBarIdle(60_000);
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as { patients: Record<string, string[]> };
  const all = Object.values(split.patients).flat();
  assert.equal(new Set(all).size, all.length, 'a patient in two splits');
  assert.equal(all.length, 6);
});

test('Train Model shows a cancellable progress notification and the epoch in the status bar, then writes the model', async () => {
  await runCommand(page, 'IDC: Train Model');
  // The notification comes from the server's work-done progress, with a Cancel button.
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Train model', hasNotText: 'done in' }).first();
  await toast.waitFor({ timeout: 60_000 });
  await screenshot(page, '02-training-progress');
  assert.ok(await toast.getByRole('button', { name: 'Cancel' }).count() > 0, `no Cancel on the progress notification: ${await toast.innerText()}`);
  const statusItem = page.locator('.statusbar-item', { hasText: 'IDC:' }).first();
  const deadline = Date.now() + 120_000;
  let seen = '';
  while (Date.now() < deadline) {
    seen = (await statusItem.innerText()).trim();
    if (/IDC: training epoch \d+\/3/.test(seen)) break;
    await sleep(200);
  }
  assert.match(seen, /IDC: training epoch \d+\/3/);
  // A second training, or a resume, while this one runs is refused with the run's id and a way to it (never queued).
  await runCommand(page, 'IDC: Train Model');
  await toastWithButton(/Training is already running \(run run-[\d-]+\)\. Stop it first, or wait/, 'Stop Training');
  await runCommand(page, 'IDC: Resume Training');
  const refusal = page.locator('.notifications-toasts .notification-toast', { hasText: 'Training is already running' }).last();
  await refusal.waitFor({ timeout: 30_000 });
  await screenshot(page, '02a-second-training-refused');
  assert.doesNotMatch((await statusItem.innerText()).trim(), /queued/, 'nothing was queued');
  // The training panel, opened mid-run from the refusal, follows it live: one table row per finished epoch.
  await refusal.getByRole('button', { name: 'Show Training' }).click();
  await runCommand(page, 'IDC: Show Training');
  const panel = page.frameLocator('iframe.webview.ready').last().frameLocator('iframe#active-frame');
  await panel.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  await panel.locator('[data-testid="run-status"][data-status="running"]').waitFor({ timeout: 60_000 });
  await screenshot(page, '02b-training-panel-live');
  await panel.locator('[data-testid="epochs-table"] tr[data-epoch="2"]').waitFor({ state: 'attached', timeout: 300_000 });
  await panel.locator('[data-testid="run-status"][data-status="finished"]').waitFor({ timeout: 60_000 });
  const runs = join(out, 'runs');
  await waitForFile(runs, 60_000, page);
  const deadline2 = Date.now() + 300_000;
  let model = '';
  while (Date.now() < deadline2) {
    const ids = existsSync(runs) ? readdirSync(runs) : [];
    const done = ids.find((id) => existsSync(join(runs, id, 'model', 'model.json')));
    if (done) { model = join(runs, done, 'model', 'model.json'); break; }
    await sleep(500);
  }
  assert.ok(model, 'no model.json after training');
  await statusBarIdle(60_000);
  const runDir = join(model, '..', '..');
  const history = readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n');
  assert.equal(history.length, 3);
  await screenshot(page, '03-trained');
});

test('Evaluate Model writes metrics and predictions', async () => {
  await runCommand(page, 'IDC: Evaluate Model');
  const runs = join(out, 'runs');
  const run = readdirSync(runs)[0];
  const metrics = join(runs, run, 'eval', 'test', 'metrics.json');
  await waitForFile(metrics, 180_000, page);
  await statusBarIdle(60_000);
  const m = JSON.parse(readFileSync(metrics, 'utf8')) as { n: number; auc: number | null };
  assert.ok(m.n > 0);
  assert.ok(existsSync(join(runs, run, 'eval', 'test', 'predictions.csv')));
  await screenshot(page, '04-evaluated');
});

test('a broken idc.config.json shows a problem', async () => {
  await runCommand(page, 'IDC: Open Config');
  await page.locator('.monaco-editor .view-lines').first().waitFor({ timeout: 30_000 });
  const broken = { ...config, split: { ...config.split, ratios: [0.6, 0.6, 0.2] } };
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(broken, null, 2) + '\n');
  await runCommand(page, 'View: Toggle Problems');
  const problem = page.locator('.markers-panel .monaco-list-row', { hasText: /sum/i }).first();
  await problem.waitFor({ timeout: 60_000 });
  await screenshot(page, '05-broken-config');
  // A command run on the broken config names the problem and offers to open the file.
  await runCommand(page, 'Notifications: Clear All Notifications');
  await runCommand(page, 'IDC: Train Model');
  await toastWithButton(/idc\.config\.json has a problem/, 'Open Config');
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(config, null, 2) + '\n');
});

test('no errors in the extension host log', async () => {
  const errors = extensionHostErrors(server.userDataDir);
  assert.deepEqual(errors, []);
});
