/**
 * The IDC side bar in a real VS Code (code-server + Chromium): the view container and its welcome
 * content in an empty workspace, the walkthrough (its real-panel images, and the steps it ticks off
 * once the pipeline has run), the trees filling in while the CLI runs the
 * pipeline (file watcher), context-menu actions opening the right panel, a live training in the
 * status bar and the Runs tree (which agree, and the status reveals the run), Delete refusing a
 * run in use and deleting another after its confirmation; screenshots in light and dark themes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, FrameLocator, Locator, Page } from 'playwright-core';
import {
  ARTIFACTS, VSIX, contextMenu, e2eEnv, extensionHostErrors, keepLogs, launchBrowser, openWorkbench, runCommand, screenshot,
  setTheme, startCodeServer, sleep, THEMES, tinyConfig, type CodeServer, idcCli, webviewFrame, viewPane,
} from './harness';

const home = mkdtempSync(join(tmpdir(), 'idc-e2e-sidebar-'));
const workspace = join(home, 'workspace');
const out = join(workspace, 'idc-output');

let server: CodeServer;
let browser: Browser;
let page: Page;
let sleeper: ChildProcess | undefined;

before(async () => {
  assert.ok(existsSync(VSIX), `${VSIX} is missing: run "npm run package" first (npm run test:e2e does).`);
  const env = e2eEnv();
  mkdirSync(workspace, { recursive: true });
  server = await startCodeServer(env, home, workspace, { 'workbench.colorTheme': THEMES.dark });
  browser = await launchBrowser(env);
  page = await openWorkbench(browser, server.url);
});

after(async () => {
  sleeper?.kill();
  if (page) await screenshot(page, 'sidebar-final').catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  if (server) keepLogs(server.userDataDir);
});

const cli = (...args: string[]): void => idcCli(workspace, ...args);

/** A view of the IDC container, by its title. */
const pane = (title: 'Dataset' | 'Runs' | 'Evaluations'): Locator => viewPane(page, title);

/** Waits until a row's label matches, dumping the view's rows when it never does. */
async function waitRow(view: 'Dataset' | 'Runs' | 'Evaluations', label: RegExp, timeoutMs = 60_000): Promise<Locator> {
  const r = pane(view).getByRole('treeitem', { name: label }).first();
  try {
    await r.waitFor({ timeout: timeoutMs });
  } catch {
    const rows = await pane(view).getByRole('treeitem').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    await screenshot(page, `sidebar-timeout-${view}`);
    throw new Error(`no row matching ${label} in ${view}; rows: ${JSON.stringify(rows)}`);
  }
  return r;
}

/** The walkthrough steps VS Code shows as done, by step id, in walkthrough order. */
async function doneSteps(): Promise<string[]> {
  const ids = await page.locator('.gettingStartedContainer [data-done-step-id].complete').evaluateAll((els) => els.map((e) => e.getAttribute('data-done-step-id') ?? ''));
  const order = ['workspace', 'data', 'organize', 'split', 'train', 'falseNegatives', 'threshold'];
  return order.filter((id) => ids.some((x) => x.endsWith(`#${id}`) || x === id));
}

/** The content frame of the webview panel now shown. */
const webview = (): FrameLocator => webviewFrame(page);

async function sidebarShot(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.locator('.part.sidebar').screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

const toast = (text: string | RegExp): Locator => page.locator('.notifications-toasts .notification-toast', { hasText: text }).last();

test('the IDC view container is in the activity bar; an empty workspace shows the welcome content', async () => {
  const item = page.locator('.activitybar').getByRole('tab', { name: /IDC Inspector/ });
  await item.waitFor({ timeout: 60_000 });
  await item.click();
  for (const view of ['Dataset', 'Runs', 'Evaluations'] as const) await pane(view).waitFor({ timeout: 30_000 });
  // The folder is open but empty: the Dataset view's welcome content (set once the extension has its context keys).
  const welcome = pane('Dataset').locator('.welcome-view-content');
  await welcome.filter({ hasText: 'No dataset yet' }).waitFor({ timeout: 60_000 });
  for (const b of ['Choose the Archive Folder', 'Generate Synthetic Dataset']) assert.ok(await welcome.getByRole('button', { name: b }).count() === 1, `welcome button ${b}`);
  // An inline link (VS Code gives welcome links the button role).
  assert.ok(await welcome.getByRole('button', { name: 'idc.config.json' }).count() === 1, 'the Open Config link');
  await pane('Runs').locator('.welcome-view-content', { hasText: 'No training run yet' }).waitFor({ timeout: 10_000 });
  await pane('Evaluations').locator('.welcome-view-content', { hasText: 'No evaluation yet' }).waitFor({ timeout: 10_000 });
  // The pointer off the activity bar: its hover tooltip would sit over the view.
  await page.mouse.move(900, 450);
  await sleep(500);
  await sidebarShot('sidebar-welcome-dark');
});

test('IDC: Get Started opens the walkthrough', async () => {
  await runCommand(page, 'IDC: Get Started');
  const walkthrough = page.locator('.gettingStartedContainer');
  await walkthrough.filter({ hasText: 'Get started with IDC Inspector' }).waitFor({ timeout: 30_000 });
  for (const step of ['Open or create a workspace', 'Get the data', 'Organize the archive', 'Split by patient', 'Train a model', 'Inspect the false negatives', 'Choose a threshold']) {
    assert.ok(await walkthrough.locator('.step-title', { hasText: step }).count() > 0, `step "${step}"`);
  }
  // The first step's media: its markdown, rendered in a webview, with its image loaded.
  const deadline = Date.now() + 30_000;
  let image: { src: string; width: number } | undefined;
  while (!image && Date.now() < deadline) {
    for (const f of page.frames()) {
      const found = await f.evaluate(() => {
        const img = Array.from(document.images).find((i) => /docs\/images\/sidebar-welcome\.png/.test(i.src));
        return img && img.complete && img.naturalWidth > 0 ? { src: img.src, width: img.naturalWidth } : undefined;
      }).catch(() => undefined);
      if (found) image = found;
    }
    if (!image) await sleep(500);
  }
  await screenshot(page, 'walkthrough');
  assert.ok(image, 'the step image (docs/images/sidebar-welcome.png, the real side bar of an empty workspace) was shown');
  // An empty workspace has done none of the steps.
  assert.deepEqual(await doneSteps(), []);
  await runCommand(page, 'View: Close All Editors');
});

test('the trees fill in while the CLI runs the pipeline: the run with its best AUC, the evaluations', async () => {
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(tinyConfig({ epochs: 2, stepsPerEpoch: 20 }, 1), null, 2) + '\n');
  cli('synth', join(workspace, 'data', 'archive'), '--patients', '8', '--seed', '21');
  cli('organize');
  const report = JSON.parse(readFileSync(join(out, 'organize-report.json'), 'utf8'));
  await waitRow('Dataset', new RegExp(`^Manifest, ${report.totals.patches.toLocaleString('en-US')} patches · 8 patients`));
  cli('split');
  await waitRow('Dataset', /^Split by patient, seed 3 · 50\/25\/25/);
  await waitRow('Dataset', /^test, \d+ patients? · [\d,]+ patches · [\d.]+% IDC$/);
  cli('train', '--run', 'e2e-run');
  cli('evaluate', '--run', 'e2e-run');
  cli('evaluate', '--run', 'e2e-run', '--split', 'val');
  const history = readFileSync(join(out, 'runs', 'e2e-run', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; val_auc: number });
  const best = history.reduce((a, b) => (b.val_auc > a.val_auc ? b : a));
  await waitRow('Runs', new RegExp(`^e2e-run, finished · AUC ${best.val_auc.toFixed(3)} \\(epoch ${best.epoch + 1}\\) · wasm`));
  const m = JSON.parse(readFileSync(join(out, 'runs', 'e2e-run', 'eval', 'test', 'metrics.json'), 'utf8'));
  const iv = m.intervals.auc as [number, number];
  await waitRow('Evaluations', new RegExp(`^e2e-run/test, AUC ${m.auc.toFixed(3)} \\(${iv[0].toFixed(3)}–${iv[1].toFixed(3)}\\) · threshold 0\\.5$`));
  await waitRow('Evaluations', /^e2e-run\/val, AUC /);
  await runCommand(page, 'Notifications: Clear All Notifications');
});

test('the walkthrough ticks off the steps the pipeline did, from the context keys the extension sets', async () => {
  await runCommand(page, 'IDC: Get Started');
  await page.locator('.gettingStartedContainer').filter({ hasText: 'Get started with IDC Inspector' }).waitFor({ timeout: 30_000 });
  const deadline = Date.now() + 30_000;
  let done = await doneSteps();
  while (done.length < 5 && Date.now() < deadline) { await sleep(500); done = await doneSteps(); }
  await screenshot(page, 'walkthrough-done');
  // The CLI wrote the config, organized, split and trained; nobody opened the gallery or the threshold explorer.
  assert.deepEqual(done, ['workspace', 'data', 'organize', 'split', 'train']);
  await runCommand(page, 'View: Close All Editors');
});

test('context menus: a run opens its training panel, an evaluation opens the gallery on that evaluation', async () => {
  await contextMenu(page, await waitRow('Runs', /^e2e-run, /), 'Show Training');
  let frame = webview();
  await frame.locator('body[data-panel="training"][data-ready="true"]').waitFor({ timeout: 60_000 });
  assert.equal((await frame.getByTestId('run-id').innerText()).trim(), 'e2e-run');
  // The newest evaluation is val: the gallery must open on the one clicked, test.
  await contextMenu(page, await waitRow('Evaluations', /^e2e-run\/test, /), 'Show False Negatives');
  frame = webview();
  await frame.locator('body[data-panel="gallery"][data-ready="true"]').waitFor({ timeout: 60_000 });
  const name = frame.getByTestId('evaluation-name');
  await name.filter({ hasText: /^e2e-run\/test · / }).waitFor({ timeout: 20_000 });
  await screenshot(page, 'sidebar-gallery-from-menu');
  await runCommand(page, 'View: Close All Editors');
});

test('a training from VS Code: the status bar and the Runs tree say the same epoch; the status reveals the run; Stop from the tree', async () => {
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(tinyConfig({ epochs: 4, stepsPerEpoch: 20 }, 1), null, 2) + '\n');
  await runCommand(page, 'IDC: Train Model');
  const status = page.locator('.statusbar-item', { hasText: 'IDC:' }).first();
  const deadline = Date.now() + 180_000;
  let agreed: { epoch: string; label: string } | undefined;
  let seen = '';
  while (!agreed && Date.now() < deadline) {
    const bar = (await status.innerText().catch(() => '')).trim();
    const labels = await pane('Runs').getByRole('treeitem', { name: /, training epoch / }).evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    const inBar = /training epoch (\d+\/\d+)/.exec(bar)?.[1];
    const inTree = labels.length === 1 ? /training epoch (\d+\/\d+)/.exec(labels[0])?.[1] : undefined;
    seen = `status bar "${bar}", tree ${JSON.stringify(labels)}`;
    if (inBar && inBar === inTree) agreed = { epoch: inBar, label: labels[0] };
    else await sleep(200);
  }
  assert.ok(agreed, `the status bar and the tree never said the same epoch: ${seen}`);
  const runId = agreed.label.slice(0, agreed.label.indexOf(','));
  await sidebarShot('sidebar-training-dark');
  // Clicking the status bar item reveals (selects) the run in the tree.
  await pane('Runs').getByRole('treeitem', { name: /^e2e-run, / }).click();
  await status.click();
  await pane('Runs').locator('.monaco-list-row.selected', { hasText: runId }).waitFor({ timeout: 20_000 });
  // Stop from the tree: the run keeps its epochs and shows as stopped (resumable).
  await contextMenu(page, pane('Runs').getByRole('treeitem', { name: new RegExp(`^${runId}, `) }), 'Stop Job');
  await waitRow('Runs', new RegExp(`^${runId}, (stopped|interrupted) at epoch \\d/4`), 120_000);
  const run = JSON.parse(readFileSync(join(out, 'runs', runId, 'run.json'), 'utf8'));
  assert.equal(run.status, 'stopped');
  await runCommand(page, 'Notifications: Clear All Notifications');
});

test('Delete refuses a run in use, and deletes another after a confirmation naming it', async () => {
  // Two copies of the finished run; one is locked by a live process, as a training in a terminal locks it.
  for (const id of ['busy-run', 'spare-run']) {
    cpSync(join(out, 'runs', 'e2e-run'), join(out, 'runs', id), { recursive: true });
    const file = join(out, 'runs', id, 'run.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), id }));
  }
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  writeFileSync(join(out, 'runs', 'busy-run', '.idc-lock'), JSON.stringify({ pid: sleeper.pid, host: hostname(), startedAt: new Date().toISOString(), command: 'idc train --run busy-run' }));
  await contextMenu(page, await waitRow('Runs', /^busy-run, /), 'Delete Run…');
  await toast(/run busy-run is in use by pid/).waitFor({ timeout: 20_000 });
  assert.match(await toast(/run busy-run is in use by pid/).innerText(), new RegExp(`in use by pid ${sleeper.pid} .*idc train --run busy-run\\. Stop that job, then delete the run\\.`));
  assert.equal(await page.locator('.monaco-dialog-box').count(), 0, 'no confirmation for a run in use');
  assert.ok(existsSync(join(out, 'runs', 'busy-run', 'run.json')));

  await contextMenu(page, await waitRow('Runs', /^spare-run, /), 'Delete Run…');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 20_000 });
  assert.match(await dialog.locator('.dialog-message-text').innerText(), /Delete run spare-run\?/);
  assert.ok((await dialog.locator('.dialog-message-detail').innerText()).includes(join(out, 'runs', 'spare-run')), 'the confirmation names the folder');
  await screenshot(page, 'sidebar-delete-confirmation');
  await dialog.getByRole('button', { name: 'Delete' }).click();
  const gone = Date.now() + 20_000;
  while (existsSync(join(out, 'runs', 'spare-run')) && Date.now() < gone) await sleep(200);
  assert.equal(existsSync(join(out, 'runs', 'spare-run')), false, 'deleted');
  await pane('Runs').getByRole('treeitem', { name: /^spare-run, / }).waitFor({ state: 'detached', timeout: 20_000 });
  sleeper.kill();
  await runCommand(page, 'Notifications: Clear All Notifications');
});

test('screenshots of the side bar in the light and dark themes', async () => {
  await pane('Runs').getByRole('treeitem', { name: /^e2e-run, / }).click();
  // Clicking a run opens its training panel; let it load and take focus before the palette opens.
  await webview().locator('body[data-panel="training"][data-ready="true"]').waitFor({ timeout: 60_000 });
  for (const theme of ['light', 'dark'] as const) {
    await setTheme(page, theme);
    await sleep(1000);
    await sidebarShot(`sidebar-${theme}`);
    await screenshot(page, `sidebar-window-${theme}`);
  }
});

test('no errors in the extension host log', () => {
  assert.deepEqual(extensionHostErrors(server.userDataDir), []);
});
