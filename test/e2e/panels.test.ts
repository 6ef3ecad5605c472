/**
 * The five panels in a real VS Code (code-server + Chromium), on a workspace the CLI has taken
 * through organize, split, train and evaluate: each opens from the palette and shows its data;
 * screenshots in light and dark themes; a forged request for a file outside the dataset and
 * output folders is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, FrameLocator, Page } from 'playwright-core';
import {
  VSIX, e2eEnv, extensionHostErrors, extensionHostLogs, keepLogs, launchBrowser, openWorkbench, runCommand,
  screenshot, setTheme, startCodeServer, sleep, THEMES, tinyConfig, type CodeServer, idcCli, webviewFrame,
} from './harness';

const home = mkdtempSync(join(tmpdir(), 'idc-e2e-panels-'));
const workspace = join(home, 'workspace');
const out = join(workspace, 'idc-output');
// Stain normalization on: the run is trained, evaluated and Grad-CAM'd on normalized inputs, and
// the dataset panel shows each slide's estimate.
const config = { ...tinyConfig({ epochs: 2, stepsPerEpoch: 20 }, 2), data: { stainNormalization: 'macenko' } };

let server: CodeServer;
let browser: Browser;
let page: Page;
let runId = '';
let evalDir = '';

const cli = (...args: string[]): void => idcCli(workspace, ...args);

before(async () => {
  assert.ok(existsSync(VSIX), `${VSIX} is missing: run "npm run package" first (npm run test:e2e does).`);
  const env = e2eEnv();
  mkdirSync(workspace, { recursive: true });
  writeFileSync(join(workspace, 'idc.config.json'), JSON.stringify(config, null, 2) + '\n');
  cli('synth', join(workspace, 'data', 'archive'), '--patients', '8', '--seed', '21');
  cli('organize');
  cli('split');
  cli('train', '--run', 'e2e-run');
  cli('evaluate', '--run', 'e2e-run');
  runId = 'e2e-run';
  evalDir = join(out, 'runs', runId, 'eval', 'test');
  assert.ok(existsSync(join(evalDir, 'metrics.json')));
  server = await startCodeServer(env, home, workspace, { 'workbench.colorTheme': THEMES.dark });
  browser = await launchBrowser(env);
  page = await openWorkbench(browser, server.url);
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  if (server) keepLogs(server.userDataDir);
});

/** The content frame of the webview panel now shown. */
const webview = (): FrameLocator => webviewFrame(page);

async function openPanel(title: string): Promise<FrameLocator> {
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, title);
  const frame = webview();
  await frame.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  return frame;
}

/** The first number in a text, thousands separators and all ("7,674 patches" -> 7674). */
function firstNumber(text: string): number {
  const m = text.match(/\d[\d,\u00a0\u202f]*/);
  assert.ok(m, `no number in "${text}"`);
  return Number(m[0].replace(/[^\d]/g, ''));
}

/** True when a canvas has been drawn on (some pixel is not transparent). */
async function canvasDrawn(frame: FrameLocator, testId: string): Promise<boolean> {
  const canvas = frame.locator(`[data-testid="${testId}"] canvas, canvas[data-testid="${testId}"]`).first();
  await canvas.waitFor({ timeout: 20_000 });
  return canvas.evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) return false;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
    return false;
  });
}

/** Images matching the selector that finished loading with real pixels. */
async function loadedImages(frame: FrameLocator, selector: string): Promise<{ total: number; loaded: number }> {
  const imgs = frame.locator(selector);
  await imgs.first().waitFor({ timeout: 20_000 });
  const count = () => imgs.evaluateAll((els) => ({
    total: els.length,
    loaded: els.filter((e) => (e as HTMLImageElement).complete && (e as HTMLImageElement).naturalWidth > 0).length,
  }));
  // Each image is its own request through the webview's service worker: give them time.
  const deadline = Date.now() + 20_000;
  let c = await count();
  while (c.loaded < c.total && Date.now() < deadline) {
    await sleep(250);
    c = await count();
  }
  return c;
}

async function bothThemes(name: string): Promise<void> {
  for (const theme of ['light', 'dark'] as const) {
    await setTheme(page, theme);
    await sleep(1000);
    await screenshot(page, `panel-${name}-${theme}`);
  }
}

test('Dataset panel: totals, class-balance charts, leakage check, patch grid', async () => {
  const frame = await openPanel('IDC: Show Dataset');
  const rows = readFileSync(join(out, 'manifest.csv'), 'utf8').trim().split('\n').length - 1;
  assert.equal(firstNumber(await frame.locator('[data-testid="total-patches"] .value').innerText()), rows);
  assert.equal(await frame.getByTestId('leakage').getAttribute('data-ok'), 'true');
  assert.ok(await canvasDrawn(frame, 'pie-train'), 'train doughnut drawn');
  assert.ok(await canvasDrawn(frame, 'split-bars'), 'stacked bars drawn');
  const patients = await frame.locator('[data-testid="patient-table"] tr[data-patient]').count();
  assert.equal(patients, 8);
  // Every slide's stain estimate, with its two colours set (from script, under the CSP).
  assert.equal(await frame.locator('[data-testid="stain-cell"]').count(), 8);
  await frame.getByTestId('stain-note').waitFor();
  const swatches = await frame.locator('[data-testid="stain-cell"] .stain-swatch').evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
  assert.equal(swatches.length, 16);
  assert.ok(swatches.every((c) => /^rgb\(\d+, \d+, \d+\)$/.test(c)), swatches.join(' '));
  assert.ok(new Set(swatches).size > 2, 'haematoxylin and eosin differ, and slides differ');
  await frame.getByTestId('patient-table').scrollIntoViewIfNeeded();
  await screenshot(page, 'panel-dataset-stains');
  const imgs = await loadedImages(frame, '[data-testid="patch"] img');
  assert.ok(imgs.total > 0 && imgs.loaded === imgs.total, `${imgs.loaded}/${imgs.total} patch images loaded`);
  await bothThemes('dataset');
});

test('Training panel: curves drawn, one row per epoch, parameter count from the model', async () => {
  const frame = await openPanel('IDC: Show Training');
  assert.equal((await frame.getByTestId('run-id').innerText()).trim(), runId);
  assert.ok(await canvasDrawn(frame, 'chart-loss'), 'loss chart drawn');
  assert.ok(await canvasDrawn(frame, 'chart-auc'), 'AUC chart drawn');
  const history = readFileSync(join(out, 'runs', runId, 'history.jsonl'), 'utf8').trim().split('\n');
  assert.equal(await frame.locator('[data-testid="epochs-table"] tr[data-epoch]').count(), history.length);
  const model = JSON.parse(readFileSync(join(out, 'runs', runId, 'model', 'model.json'), 'utf8')) as { weightsManifest: { weights: { shape: number[] }[] }[] };
  const params = model.weightsManifest.flatMap((g) => g.weights).reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
  await frame.getByTestId('model-section').click().catch(() => {});
  assert.equal(firstNumber(await frame.getByTestId('total-params').innerText()), params);
  await bothThemes('training');
});

test('Threshold explorer: the slider moves the confusion matrix to metrics.json counts; a cell click filters the gallery', async () => {
  const frame = await openPanel('IDC: Show Evaluation');
  assert.ok(await canvasDrawn(frame, 'roc-chart'), 'ROC drawn');
  assert.ok(await canvasDrawn(frame, 'pr-chart'), 'PR drawn');
  const metrics = JSON.parse(readFileSync(join(evalDir, 'metrics.json'), 'utf8')) as { operatingPoints: { name: string; threshold: number; tp: number; fp: number; fn: number; tn: number }[] };
  for (const op of metrics.operatingPoints.filter((o) => o.name !== 'default').slice(0, 3)) {
    const input = frame.getByTestId('threshold-input');
    await input.fill(String(op.threshold));
    await input.press('Enter');
    await sleep(300);
    const cell = async (k: string) => firstNumber(await frame.locator(`[data-testid="cm-${k}"] .cm-count`).innerText());
    assert.deepEqual({ tp: await cell('tp'), fp: await cell('fp'), fn: await cell('fn'), tn: await cell('tn') },
      { tp: op.tp, fp: op.fp, fn: op.fn, tn: op.tn }, `counts at ${op.name} (${op.threshold})`);
  }
  // The slider itself: counts must match the predictions at the slider's value (IDC when score >= t).
  const rows = readFileSync(join(evalDir, 'predictions.csv'), 'utf8').trim().split('\n');
  const header = rows[0].split(',');
  const [li, si] = [header.indexOf('label'), header.indexOf('score')];
  const preds = rows.slice(1).map((r) => r.split(',')).map((c) => ({ label: Number(c[li]), score: Math.fround(Number(c[si])) }));
  let atLast = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (const t of [0.25, 0.5, 0.75]) {
    await frame.getByTestId('threshold-slider').fill(String(t));
    await sleep(300);
    const cell = async (k: string) => firstNumber(await frame.locator(`[data-testid="cm-${k}"] .cm-count`).innerText());
    const expected = { tp: 0, fp: 0, fn: 0, tn: 0 };
    for (const p of preds) expected[p.score >= Math.fround(t) ? (p.label ? 'tp' : 'fp') : (p.label ? 'fn' : 'tn')]++;
    assert.deepEqual({ tp: await cell('tp'), fp: await cell('fp'), fn: await cell('fn'), tn: await cell('tn') }, expected, `counts at slider ${t}`);
    atLast = expected;
  }
  // Pin writes the threshold (one selecting the same patches) into idc.config.json.
  await frame.getByTestId('pin-button').click();
  const configFile = join(workspace, 'idc.config.json');
  const deadline = Date.now() + 20_000;
  let pinned: number[] = [];
  while (Date.now() < deadline && !pinned.length) {
    pinned = (JSON.parse(readFileSync(configFile, 'utf8')) as { evaluate?: { pinnedThresholds?: number[] } }).evaluate?.pinnedThresholds ?? [];
    if (!pinned.length) await sleep(250);
  }
  assert.equal(pinned.length, 1, `pinnedThresholds ${JSON.stringify(pinned)}`);
  const positivesAt = (t: number) => preds.filter((p) => p.score >= Math.fround(t)).length;
  assert.equal(positivesAt(pinned[0]), positivesAt(0.75));
  await bothThemes('threshold');
  // The false positives at the slider's last value, in the gallery.
  const last = atLast;
  await frame.getByTestId('cm-fp').click();
  const gallery = webview();
  await gallery.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
  await gallery.locator('[data-testid="tab-fp"][aria-selected="true"], [data-testid="tab-fp"].selected, [data-testid="tab-fp"][selected]').first().waitFor({ timeout: 20_000 });
  const count = firstNumber(await gallery.getByTestId('count-fp').innerText());
  assert.equal(count, last.fp);
  if (last.fp > 0) {
    const tiles = await gallery.locator('[data-testid="tile"]').count();
    assert.ok(tiles > 0 && tiles <= last.fp, `${tiles} tiles for ${last.fp} false positives`);
  }
});

test('Gallery: false-negative tiles are patch images that loaded; a click shows the patch large', async () => {
  const frame = await openPanel('IDC: Show False Negatives');
  const fn = firstNumber(await frame.getByTestId('count-fn').innerText());
  const tab = await frame.getByTestId('tab-tp');
  if (fn === 0) await tab.click(); // a perfect model on the FN tab would show nothing to check
  const imgs = await loadedImages(frame, '[data-testid="tile"] img');
  assert.ok(imgs.total > 0 && imgs.loaded === imgs.total, `${imgs.loaded}/${imgs.total} tile images loaded`);
  // A tile evaluate drew no Grad-CAM for (it draws the 2 worst): compute one on demand, in the language server.
  const tile = frame.locator('[data-testid="tile"]').nth(Math.min(4, imgs.total - 1));
  const id = await tile.getAttribute('data-id');
  await tile.click();
  await frame.getByTestId('detail').waitFor({ timeout: 10_000 });
  await frame.getByTestId('detail-compute-gradcam').click();
  const cam = frame.getByTestId('detail-gradcam');
  await cam.waitFor({ timeout: 120_000 });
  await cam.evaluate((img: HTMLImageElement) => img.complete || new Promise((r) => img.addEventListener('load', r, { once: true })));
  assert.ok(await cam.evaluate((img: HTMLImageElement) => img.naturalWidth) > 0, 'Grad-CAM image loaded');
  assert.ok(existsSync(join(evalDir, 'gradcam', `${id}.png`)), `gradcam/${id}.png written`);
  await bothThemes('gallery');
});

test('Slide map: the slide is drawn and the patient list holds every test patient', async () => {
  const frame = await openPanel('IDC: Show Slide Map');
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as { patients: Record<string, string[]> };
  assert.equal(await frame.locator('[data-testid="patient-list"] [data-patient]').count(), split.patients.test.length);
  assert.ok(await canvasDrawn(frame, 'slide-canvas'), 'slide canvas drawn');
  await bothThemes('slidemap');
});

test('a forged request for a file outside the dataset and output folders is refused and logged', async () => {
  await openPanel('IDC: Show Dataset');
  // The page's frame, and the VS Code frame around it that carries its messages to the host.
  let inner: Frame | undefined;
  for (const f of page.frames()) if ((await f.evaluate(() => document.body?.dataset.panel).catch(() => undefined)) === 'dataset') inner = f;
  assert.ok(inner, 'dataset page frame');
  const outer = inner.parentFrame()!;
  const forged = '/etc/passwd';
  const answer = inner.evaluate(() => new Promise<unknown>((resolve) => {
    window.addEventListener('message', (e) => {
      const d = e.data as { kind?: string; id?: number };
      if (d?.kind === 'response' && d.id === 424242) resolve(d);
    });
    setTimeout(() => resolve('no answer'), 10_000);
  }));
  await sleep(200);
  // What a compromised page could send: the envelope the real client uses, through the same channel
  // as acquireVsCodeApi().postMessage.
  await outer.evaluate((path) => {
    const post = (window as unknown as Record<string, (channel: string, data: unknown) => void>).__vscode_post_message__;
    post('onmessage', { message: { kind: 'request', id: 424242, method: 'resolveImages', params: { paths: [path] } } });
  }, forged);
  assert.deepEqual(await answer, { kind: 'response', id: 424242, result: [null] });
  await sleep(500);
  const log = extensionHostLogs(server.userDataDir).filter((f) => /IDC\.log$/.test(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.match(log, /refused a request for \/etc\/passwd/);
});

test('a panel open when the window reloads comes back with its data (serializer, activation on restore)', async () => {
  await openPanel('IDC: Show Training');
  await sleep(1000); // the page saves its state with setState
  await runCommand(page, 'Developer: Reload Window');
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  const frame = webview();
  await frame.locator('body[data-panel="training"][data-ready="true"]').waitFor({ timeout: 90_000 });
  assert.equal((await frame.getByTestId('run-id').innerText()).trim(), runId);
  await screenshot(page, 'panel-training-restored');
});

test('no errors in the extension host log', () => {
  assert.deepEqual(extensionHostErrors(server.userDataDir), []);
});
