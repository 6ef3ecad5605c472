/**
 * Drives a real VS Code: code-server on 127.0.0.1 with the packaged .vsix installed, and Debian's
 * Chromium through playwright-core. scripts/install-e2e.sh installs both (npm run test:e2e runs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium, type Browser, type FrameLocator, type Locator, type Page } from 'playwright-core';

export const ROOT = resolve(__dirname, '..', '..');
export const VSIX = join(ROOT, 'dist', 'idc-inspector.vsix');
/** Screenshots and logs of the last run, kept for CI. */
export const ARTIFACTS = join(ROOT, 'test-results', 'e2e');

export interface E2eEnv { NODE24: string; CODE_SERVER: string; CHROMIUM: string; CODE_SERVER_PATH: string }

/** The tools install-e2e.sh put in place (its env.sh), or a clear message saying how to get them. */
export function e2eEnv(): E2eEnv {
  const prefix = process.env.IDC_E2E_PREFIX ?? join(homedir(), '.cache', 'idc-e2e');
  const file = join(prefix, 'env.sh');
  if (!existsSync(file)) throw new Error(`${file} is missing: run "bash scripts/install-e2e.sh" (npm run test:e2e does) to install code-server, Node 24 and Chromium.`);
  const r = spawnSync('bash', ['-c', `source "${file}" && env -0`], { encoding: 'utf8' });
  const env = Object.fromEntries(r.stdout.split('\0').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  for (const k of ['NODE24', 'CODE_SERVER', 'CHROMIUM', 'CODE_SERVER_PATH']) if (!env[k]) throw new Error(`${file} does not set ${k}; rerun scripts/install-e2e.sh.`);
  return env as unknown as E2eEnv;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface CodeServer {
  url: string;
  userDataDir: string;
  stop(): Promise<void>;
}

/** Starts code-server on `workspace` with the .vsix (default: the universal one) installed in a fresh profile under `home`. */
export async function startCodeServer(env: E2eEnv, home: string, workspace: string, settings: Record<string, unknown> = {}, vsix = VSIX): Promise<CodeServer> {
  const userDataDir = join(home, 'user-data');
  const extensionsDir = join(home, 'extensions');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify({
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'chat.disableAIFeatures': true,
    'workbench.tips.enabled': false,
    'window.restoreWindows': 'none',
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    ...settings,
  }, null, 2));
  const xdg = {
    XDG_DATA_HOME: join(home, 'xdg-data'), XDG_CONFIG_HOME: join(home, 'xdg-config'), XDG_CACHE_HOME: join(home, 'xdg-cache'),
  };
  const childEnv = { ...process.env, ...xdg, PATH: env.CODE_SERVER_PATH };
  const install = spawnSync(env.CODE_SERVER, ['--extensions-dir', extensionsDir, '--user-data-dir', userDataDir, '--install-extension', vsix], { env: childEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (install.status !== 0) throw new Error(`installing the .vsix failed:\n${install.stdout}${install.stderr}`);
  const port = await freePort();
  const child: ChildProcess = spawn(env.CODE_SERVER, [
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    // Trust on only for a test that turns it on in settings (Restricted Mode); else every folder is trusted.
    ...(settings['security.workspace.trust.enabled'] === true ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override', '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir, '--reconnection-grace-time', '5', workspace,
  ], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}):\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`code-server did not answer on ${url}/healthz in 90 s:\n${output}`);
    await sleep(500);
  }
  return {
    url,
    userDataDir,
    stop: async () => {
      if (child.exitCode !== null) return;
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    },
  };
}

export async function launchBrowser(env: E2eEnv): Promise<Browser> {
  return chromium.launch({
    executablePath: env.CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Opens the workbench and waits until it is usable. */
export async function openWorkbench(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  await page.locator('.statusbar').waitFor({ timeout: 60_000 });
  return page;
}

/** Runs a palette command by its title ("IDC: Train Model"); retries while the extension registers. */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: 10_000 });
    try {
      await input.fill(`>${title}`, { timeout: 5000 });
    } catch (e) {
      // A modal dialog makes the workbench inert: name it rather than time out on the palette.
      const dialogs = await page.locator('.monaco-dialog-box').allInnerTexts();
      if (dialogs.length || Date.now() > deadline) {
        await screenshot(page, `palette-${title.replace(/\W+/g, '_')}`);
        throw dialogs.length ? new Error(`"${title}": a modal dialog is open: ${JSON.stringify(dialogs)}`) : e;
      }
      // A webview that takes focus as it loads closes the palette under us: open it again.
      await sleep(1000);
      continue;
    }
    // Click the row holding the title: Enter would take the top row, and fuzzy ranking may put another first.
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ timeout: 4000 });
      await row.click();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`"${title}" never showed up in the command palette.`);
      await sleep(1000);
    }
  }
}

/** Runs the bundled CLI (`idc <args> -q`) in `cwd`, as a user would in a terminal; fails unless it exits 0. */
export function idcCli(cwd: string, ...args: string[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args, '-q'], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `idc ${args.join(' ')}: ${r.stderr}`);
}

/** The content frame of the webview panel shown last. */
export function webviewFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').last().frameLocator('iframe#active-frame');
}

/** A view of the side bar (the IDC container's Dataset, Runs, Evaluations), by its title. */
export function viewPane(page: Page, title: string): Locator {
  return page.locator('.pane').filter({ has: page.locator('.pane-header h3.title', { hasText: title }) });
}

/** Right-clicks `target` and picks `item` from its context menu. */
export async function contextMenu(page: Page, target: Locator, item: string): Promise<void> {
  // Let refreshes from the files just written settle: a re-rendered row under an open menu loses it.
  await sleep(800);
  await target.click({ button: 'right' });
  const menu = page.locator('.context-view .monaco-menu');
  const entry = menu.locator('.action-item', { hasText: new RegExp(`^\\s*${item.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) }).first();
  try {
    await entry.waitFor({ timeout: 10_000 });
  } catch {
    const items = await page.locator('.monaco-menu .action-item').allInnerTexts();
    await screenshot(page, `menu-${item.replace(/\W+/g, '_')}`);
    throw new Error(`no "${item}" in the context menu: ${JSON.stringify(items)}`);
  }
  await entry.hover();
  await entry.click();
  // The menu closes when the item runs; a click it swallowed is given again as Enter on the hovered item.
  try {
    await menu.waitFor({ state: 'hidden', timeout: 3000 });
  } catch {
    // Not when the item ran and opened a dialog: Enter would run it twice, or answer the dialog.
    if (await page.locator('.monaco-dialog-box').count()) return;
    if (!(await menu.isVisible())) return;
    await page.keyboard.press('Enter');
    await menu.waitFor({ state: 'hidden', timeout: 5000 });
  }
}

/** VS Code's default themes, as the theme picker and workbench.colorTheme name them. */
export const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern' } as const;

/** Switches the colour theme with the theme picker, as a user does, and waits until it applies. */
export async function setTheme(page: Page, theme: keyof typeof THEMES): Promise<void> {
  await runCommand(page, 'Preferences: Color Theme');
  const label = THEMES[theme].replace(/^Default /, '');
  await page.locator('.quick-input-widget input').fill(label);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first().click();
  // The class code-server gives the workbench for each built-in theme.
  await page.locator(`.monaco-workbench.vscode-theme-defaults-themes-${theme}_modern-json`).waitFor({ state: 'attached', timeout: 30_000 });
}

export async function waitForFile(path: string, timeoutMs: number, page?: Page): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) {
      if (page) await screenshot(page, `timeout-${path.replace(/[^\w]+/g, '_').slice(-60)}`);
      throw new Error(`${path} did not appear within ${timeoutMs / 1000} s.`);
    }
    await sleep(250);
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Text of the notification toasts now on screen. */
export async function toasts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-toast').allInnerTexts();
}

/** The extension host's log files (code-server runs the host as the "remote" one). */
export function extensionHostLogs(userDataDir: string): string[] {
  const logs = join(userDataDir, 'logs');
  if (!existsSync(logs)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/exthost/i.test(p) && f.endsWith('.log')) out.push(p);
    }
  };
  walk(logs);
  return out;
}

/** Known noise of an offline code-server, not ours to fix. */
const NOISE = [/vsda/, /open-vsx\.org/, /authentication provider/i, /github/i, /ENOTFOUND|EAI_AGAIN|getaddrinfo/];

/** `[error]` lines of the extension host logs that are not known noise. */
export function extensionHostErrors(userDataDir: string): string[] {
  return extensionHostLogs(userDataDir).flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => /\[error\]/.test(l) && !NOISE.some((n) => n.test(l)));
}

/** Copies the logs next to the screenshots. */
export function keepLogs(userDataDir: string): void {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of extensionHostLogs(userDataDir)) copyFileSync(f, join(ARTIFACTS, f.replace(/.*logs\//, '').replace(/[/]/g, '__')));
}

/** idc.config.json for a workspace under test: a small model on wasm that trains in seconds on 2 cores. */
export function tinyConfig(train: { epochs: number; stepsPerEpoch: number }, gradCamExamples: number) {
  return {
    paths: { archive: 'data/archive', output: 'idc-output' },
    split: { ratios: [0.5, 0.25, 0.25], seed: 3 },
    engine: { backend: 'wasm' },
    model: { filters: [8, 16], dense: [16] },
    train: { ...train, batchSize: 32 },
    evaluate: { gradCamExamples },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
