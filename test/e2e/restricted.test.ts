/**
 * Restricted Mode in a real VS Code (code-server + Chromium, workspace trust on, the folder not
 * trusted): the extension activates with its side bar and read-only panels, hides the commands
 * that start a process from its menus, and refuses them with the reason when reached anyway (the
 * walkthrough's button); nothing is written. package.json declares this as
 * capabilities.untrustedWorkspaces "limited"; test/contributions.test.ts checks the declaration.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  VSIX, e2eEnv, extensionHostErrors, idcCli, keepLogs, launchBrowser, openWorkbench, runCommand, screenshot, startCodeServer, sleep,
  tinyConfig, viewPane, webviewFrame, type CodeServer,
} from './harness';

const home = mkdtempSync(join(tmpdir(), 'idc-e2e-restricted-'));
const workspace = join(home, 'workspace');
const out = join(workspace, 'idc-output');

let server: CodeServer;
let browser: Browser;
let page: Page;

const cli = (...args: string[]): void => idcCli(workspace, ...args);

before(async () => {
  assert.ok(existsSync(VSIX), `${VSIX} is missing: run "npm run package" first (npm run test:e2e does).`);
  const env = e2eEnv();
  mkdirSync(workspace, { recursive: true });
  // A workspace someone else prepared: a config, an organized and split archive, no run yet.
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(tinyConfig({ epochs: 1, stepsPerEpoch: 2 }, 0), null, 2));
  cli('synth', join(workspace, 'data', 'archive'), '--patients', '6', '--seed', '5');
  cli('organize');
  cli('split');
  server = await startCodeServer(env, home, workspace, {
    'security.workspace.trust.enabled': true,
    // No "Do you trust the authors?" dialog: the folder opens untrusted, in Restricted Mode.
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.untrustedFiles': 'open',
  });
  browser = await launchBrowser(env);
  page = await openWorkbench(browser, server.url);
});

after(async () => {
  if (page) await screenshot(page, 'restricted-final').catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  if (server) keepLogs(server.userDataDir);
});

const pane = (title: 'Dataset' | 'Runs' | 'Evaluations') => viewPane(page, title);

test('the folder opens in Restricted Mode and the IDC side bar still shows the dataset', async () => {
  await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).waitFor({ timeout: 60_000 });
  const item = page.locator('.activitybar').getByRole('tab', { name: /IDC Inspector/ });
  await item.waitFor({ timeout: 60_000 });
  await item.click();
  await pane('Dataset').getByRole('treeitem', { name: /^Split by patient, seed 3/ }).waitFor({ timeout: 60_000 });
  await screenshot(page, 'restricted-sidebar');
});

test('menus and welcome content hide what starts a process: no Train in the Runs view, no Organize or Split in the Dataset view title', async () => {
  await pane('Runs').hover();
  await pane('Dataset').hover();
  await sleep(500);
  const titles = await page.locator('.pane-header .actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
  // Beside them in the same title bars, the read-only ones stay.
  for (const shown of [/Show Dataset/, /Open Config/, /Refresh/]) assert.ok(titles.some((t) => shown.test(t)), `${shown} is shown: ${JSON.stringify(titles)}`);
  for (const hidden of [/Train/, /Organize/, /Split by Patient/]) assert.ok(!titles.some((t) => hidden.test(t)), `${hidden} is hidden: ${JSON.stringify(titles)}`);
  // The empty Runs view says why there is no Train button, and how to trust the folder.
  const welcome = pane('Runs').locator('.welcome-view-content');
  await welcome.filter({ hasText: 'Jobs are disabled in Restricted Mode' }).waitFor({ timeout: 20_000 });
  assert.equal(await welcome.getByRole('button', { name: 'Train Model' }).count(), 0, 'no Train Model button');
  assert.equal(await welcome.getByRole('button', { name: 'Manage Workspace Trust' }).count(), 1, 'Manage Workspace Trust');
});

test('a command that starts a job, reached anyway, is refused with the reason and writes nothing', async () => {
  await runCommand(page, 'IDC: Train Model');
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'disabled in Restricted Mode' }).last();
  await toast.waitFor({ timeout: 20_000 });
  assert.match(await toast.innerText(), /IDC: Train Model is disabled in Restricted Mode: jobs run the Python interpreter that idc\.config\.json's engine\.python names/);
  assert.ok((await toast.innerText()).includes('Manage Workspace Trust'), 'it offers the way out');
  await screenshot(page, 'restricted-refused');
  await sleep(1000);
  assert.ok(!existsSync(join(out, 'runs')) || readdirSync(join(out, 'runs')).length === 0, 'no run was started');
  await runCommand(page, 'Notifications: Clear All Notifications');
});

test('browsing works: Show Dataset opens its panel', async () => {
  await runCommand(page, 'IDC: Show Dataset');
  await webviewFrame(page).locator('body[data-panel="dataset"][data-ready="true"]').waitFor({ timeout: 60_000 });
  await screenshot(page, 'restricted-dataset');
});

test('no errors in the extension host log', () => {
  assert.deepEqual(extensionHostErrors(server.userDataDir), []);
});
