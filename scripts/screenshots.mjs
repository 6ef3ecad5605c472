// npm run screenshots — copies the README's screenshots from the last E2E run (test-results/e2e/,
// written by test/e2e/*.test.ts in the light and dark themes) into docs/images/, as PNGs at most
// 800 px wide. Run `npm run test:e2e` first; nothing is written unless every screenshot is there.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FROM = join(ROOT, 'test-results', 'e2e');
const TO = join(ROOT, 'docs', 'images');
const MAX_WIDTH = 800;
const THEME = process.env.IDC_SCREENSHOT_THEME ?? 'dark';

/**
 * docs/images/<name>.png ← the first of its E2E screenshots that exists (`{theme}` is light or
 * dark). Panels: test/e2e/panels.test.ts (bothThemes); the side bar: test/e2e/sidebar.test.ts
 * (the side bar part alone, else the whole window).
 */
const SHOTS = [
  { name: 'sidebar', candidates: ['sidebar-{theme}', 'sidebar-window-{theme}'] },
  // The empty workspace's side bar, for the walkthrough's first step (taken in the dark theme only).
  { name: 'sidebar-welcome', candidates: ['sidebar-welcome-{theme}', 'sidebar-welcome-dark'] },
  { name: 'dataset', candidates: ['panel-dataset-{theme}'] },
  { name: 'training', candidates: ['panel-training-{theme}'] },
  { name: 'threshold', candidates: ['panel-threshold-{theme}'] },
  { name: 'gallery', candidates: ['panel-gallery-{theme}'] },
  { name: 'slidemap', candidates: ['panel-slidemap-{theme}'] },
];

function fail(message) {
  console.error(message);
  process.exit(1);
}

if (THEME !== 'dark' && THEME !== 'light') fail(`IDC_SCREENSHOT_THEME must be dark or light (got "${THEME}").`);
const present = existsSync(FROM) ? readdirSync(FROM) : [];

const chosen = [];
const missing = [];
for (const shot of SHOTS) {
  const names = shot.candidates.map((c) => `${c.replace('{theme}', THEME)}.png`);
  const file = names.find((n) => present.includes(n));
  if (file) chosen.push({ ...shot, file: join(FROM, file) });
  else missing.push(`${shot.name} (${names.join(' or ')})`);
}

if (missing.length > 0) {
  fail(`No E2E screenshots for: ${missing.join(', ')} in ${relative(ROOT, FROM) || '.'}/.
They are written by the end-to-end tests: run "npm run test:e2e" first, then "npm run screenshots".`);
}

mkdirSync(TO, { recursive: true });
for (const shot of chosen) {
  const out = join(TO, `${shot.name}.png`);
  const tmp = `${out}.tmp`;
  try {
    const info = await sharp(shot.file)
      .resize({ width: MAX_WIDTH, withoutEnlargement: true })
      .png({ compressionLevel: 9, palette: true, quality: 90, effort: 10 })
      .toFile(tmp);
    renameSync(tmp, out);
    console.log(`${relative(ROOT, out)} ← ${relative(ROOT, shot.file)} (${info.width}x${info.height}, ${(info.size / 1000).toFixed(1)} kB)`);
  } catch (err) {
    rmSync(tmp, { force: true });
    fail(`Could not convert ${relative(ROOT, shot.file)}: ${err instanceof Error ? err.message : err}`);
  }
}
