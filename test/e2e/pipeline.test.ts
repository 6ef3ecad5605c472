/**
 * The extension in a real VS Code (code-server + Chromium): the palette drives Organize → Split →
 * Train → Evaluate on a small synthetic archive, then a broken config must show a problem.
 * Run with `npm run test:e2e` (it packages the .vsix and installs code-server first).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import {
  VSIX, contextMenu, e2eEnv, extensionHostErrors, keepLogs, launchBrowser, openWorkbench, runCommand, screenshot,
  startCodeServer, tinyConfig, waitForFile, sleep, type CodeServer, idcCli, webviewFrame,
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
  idcCli(home, 'synth', join(workspace, 'data', 'archive'), '--patients', '6', '--seed', '11');
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

test('Score Patches in Folder from the Explorer before anything is trained: the shipped baseline model scores it and says so', async () => {
  const patient = readdirSync(join(workspace, 'data', 'archive')).filter((n) => /^\d+$/.test(n)).sort()[0];
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Shift+E');
  const tree = page.locator('.explorer-folders-view');
  for (const name of ['data', 'archive']) {
    const row = tree.getByRole('treeitem', { name, exact: true });
    await row.waitFor({ timeout: 30_000 });
    if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
  }
  await contextMenu(page, tree.getByRole('treeitem', { name: patient, exact: true }), 'Score Patches in Folder');
  const summaryFile = join(out, 'predictions', patient, 'summary.json');
  await waitForFile(summaryFile, 180_000, page);
  await statusBarIdle(60_000);
  const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as { model: string; baselineFallback?: string };
  assert.match(summary.model, /^baseline model \(shipped/);
  assert.ok(summary.baselineFallback, 'says why the baseline scored');
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
  const panel = webviewFrame(page);
  // The panel takes focus when it has loaded, which would close a palette opened before then.
  await panel.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  await runCommand(page, 'IDC: Show Training');
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

test('Cross-Validate by Patient from the palette: 3 fold runs, the pooled evaluation, then the fold table and the threshold explorer on it', async () => {
  // Shorter folds than the training above: three of them train here.
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify({ ...config, train: { ...config.train, epochs: 2, stepsPerEpoch: 8 } }, null, 2) + '\n');
  await runCommand(page, 'Notifications: Clear All Notifications');
  await runCommand(page, 'IDC: Cross-Validate by Patient');
  const input = page.locator('.quick-input-widget input');
  await page.locator('.quick-input-widget', { hasText: 'How many folds?' }).waitFor({ timeout: 30_000 });
  assert.equal(await input.inputValue(), '5', 'five folds by default');
  await input.fill('3');
  await input.press('Enter');
  const id = 'cv-3fold-seed3';
  // The server's progress notification, with Cancel, and the fold and epoch in the status bar.
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Cross-validate by patient', hasNotText: 'done in' }).first();
  await toast.waitFor({ timeout: 60_000 });
  assert.ok(await toast.getByRole('button', { name: 'Cancel' }).count() > 0, `no Cancel on the progress notification: ${await toast.innerText()}`);
  const statusItem = page.locator('.statusbar-item', { hasText: 'IDC:' }).first();
  const deadline = Date.now() + 180_000;
  let seen = '';
  while (Date.now() < deadline) {
    seen = (await statusItem.innerText()).trim();
    if (/IDC: cross-validating fold \d\/3, epoch \d\/2/.test(seen)) break;
    await sleep(200);
  }
  assert.match(seen, /IDC: cross-validating fold \d\/3, epoch \d\/2/);
  await screenshot(page, '06-cv-progress');
  // A training while it runs is refused, naming the cross-validation.
  await runCommand(page, 'IDC: Train Model');
  await toastWithButton(new RegExp(`Cross-validation is already running \\(${id}, run ${id}-fold\\d\\)`), 'Stop Cross-Validation');

  const metricsFile = join(out, 'evals', id, 'test', 'metrics.json');
  await waitForFile(metricsFile, 600_000, page);
  await statusBarIdle(60_000);
  for (const f of [1, 2, 3]) {
    const run = join(out, 'runs', `${id}-fold${f}`);
    assert.ok(existsSync(join(run, 'model', 'model.json')), `fold ${f} model`);
    assert.ok(existsSync(join(run, 'split.json')), `fold ${f} split`);
    assert.ok(existsSync(join(run, 'eval', 'test', 'metrics.json')), `fold ${f} scored`);
  }
  const m = JSON.parse(readFileSync(metricsFile, 'utf8')) as { n: number; cv: { folds: number; rows: { n: number }[] } };
  assert.equal(m.cv.folds, 3);
  assert.equal(m.cv.rows.reduce((s, r) => s + r.n, 0), m.n, 'every patch scored once');
  assert.equal(readFileSync(join(out, 'evals', id, 'test', 'predictions.csv'), 'utf8').trim().split('\n').length - 1, readFileSync(join(out, 'manifest.csv'), 'utf8').trim().split('\n').length - 1);
  await toastWithButton('Cross-validate by patient done', 'Show Evaluation');
  await screenshot(page, '07-cv-done');

  // The Training panel shows the newest run, a fold: the cross-validation's fold table.
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'IDC: Show Training');
  const panel = webviewFrame(page);
  await panel.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  const rows = panel.locator('[data-testid="cv-table"] tbody tr');
  await rows.first().waitFor({ timeout: 30_000 });
  assert.equal(await rows.count(), 3);
  assert.match(await panel.getByTestId('cv-mean').innerText(), /mean ± sd/);
  assert.match(await panel.getByTestId('cv-pooled').innerText(), /pooled out of fold/);
  assert.match(await panel.locator(`[data-testid="run-select"] vscode-option[value="cv:${id}"]`).textContent() ?? '', new RegExp(`${id} \\(3 folds\\)`));
  await screenshot(page, '08-cv-training-panel');

  // The threshold explorer opens on the pooled evaluation (the newest) and says it is a cross-validation.
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'IDC: Show Evaluation');
  const th = webviewFrame(page);
  await th.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  const note = await th.getByTestId('cv-note').innerText({ timeout: 30_000 });
  assert.match(note, new RegExp(`Cross-validation ${id}: 3 folds by patient`));
  assert.match(note, /Per-fold ROC AUC .* ± /);
  assert.ok(await canvasDrawn(th, 'roc-chart'), 'ROC drawn');
  assert.equal(firstNumber(await th.getByTestId('evaluation-summary').innerText()), m.n);
  await screenshot(page, '09-cv-threshold');
  await runCommand(page, 'View: Close All Editors');
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(config, null, 2) + '\n');
});

/** True when a canvas has been drawn on (some pixel is not transparent). */
async function canvasDrawn(frame: FrameLocator, testId: string): Promise<boolean> {
  const canvas = frame.locator(`canvas[data-testid="${testId}"]`).first();
  await canvas.waitFor({ timeout: 20_000 });
  return canvas.evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) return false;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
    return false;
  });
}

/** The first number in a text, thousands separators and all ("7,674 patches" -> 7674). */
function firstNumber(text: string): number {
  const n = text.match(/\d[\d,\u00a0\u202f]*/);
  assert.ok(n, `no number in "${text}"`);
  return Number(n[0].replace(/[^\d]/g, ''));
}

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
