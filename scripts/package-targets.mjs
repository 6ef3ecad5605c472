// Platform .vsix files that carry Dawn (npm `webgpu`) for one platform each; the universal .vsix
// (npm run package) carries no native module.
//   node scripts/package-targets.mjs [target...]          (default: every target webgpu ships)
//   node scripts/package-targets.mjs --stage DIR target    (lay out the extension only, no .vsix)
// Run `npm run build` first (npm run package:targets does). Writes dist/idc-inspector-<target>.vsix.
// A target whose Dawn binary is missing stops the run before anything is written.
//
// Dawn goes to dist/node_modules/ inside the extension: dist/server.js and the job processes it
// forks resolve `webgpu` and `@tensorflow/tfjs-backend-webgpu` from there by Node's own lookup,
// and vsce --no-dependencies drops only the top-level node_modules/.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// IDC_WEBGPU_PKG: a webgpu package folder from elsewhere (another version, or one unpacked from its
// npm tarball on a machine where npm could not install it).
const WEBGPU = resolve(process.env.IDC_WEBGPU_PKG || join(ROOT, 'node_modules', 'webgpu'));
const TFJS_WEBGPU = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-webgpu');

/** vsce target -> the folder of node_modules/webgpu/dist holding its dawn.node (macOS: one universal build). */
const TARGETS = {
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'win32-x64': 'win32-x64',
  'win32-arm64': 'win32-arm64',
  'darwin-x64': 'darwin-universal',
  'darwin-arm64': 'darwin-universal',
};

function fail(message, code = 1) {
  console.error(`package-targets: ${message}`);
  process.exit(code);
}

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The checks that make a bad call stop before anything is copied. */
function checkInputs(target) {
  if (!(target in TARGETS)) fail(`unknown target "${target}". Targets with a Dawn build: ${Object.keys(TARGETS).join(', ')}.`, 2);
  if (!existsSync(join(ROOT, 'dist', 'server.js'))) fail('dist/server.js is missing: run "npm run build" first (npm run package:targets does).');
  if (!existsSync(join(WEBGPU, 'package.json'))) {
    fail(process.env.IDC_WEBGPU_PKG ? `IDC_WEBGPU_PKG=${WEBGPU} holds no package.json: point it at an unpacked webgpu package.`
      : 'node_modules/webgpu is not installed: run "npm ci" (webgpu is an optional dependency; npm skips it when its install fails).');
  }
  if (!existsSync(join(TFJS_WEBGPU, 'package.json'))) fail('node_modules/@tensorflow/tfjs-backend-webgpu is not installed: run "npm ci".');
  const dawn = join(WEBGPU, 'dist', TARGETS[target], 'dawn.node');
  if (!existsSync(dawn)) {
    const have = readdirSync(join(WEBGPU, 'dist')).filter((d) => existsSync(join(WEBGPU, 'dist', d, 'dawn.node')));
    fail(`no Dawn binary for ${target}: ${dawn} is missing. This webgpu install has: ${have.join(', ') || 'none'}. ` +
      `Reinstall webgpu ${JSON.parse(readFileSync(join(WEBGPU, 'package.json'), 'utf8')).version} from the npm registry (it ships every platform's binary), or package only: ${have.join(', ') || 'none'}.`);
  }
}

/**
 * Copies what the universal .vsix holds (the top-level paths that .vscodeignore re-includes) into
 * `stage`, source maps left out, then adds Dawn for `target` under dist/node_modules/.
 */
async function stage(target, dir) {
  checkInputs(target);
  const ignore = readFileSync(join(ROOT, '.vscodeignore'), 'utf8');
  const tops = [...new Set(ignore.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('!')).map((l) => l.slice(1).split('/')[0]))];
  for (const top of tops) {
    const from = join(ROOT, top);
    if (!existsSync(from)) continue;
    cpSync(from, join(dir, top), {
      recursive: true,
      // dist/ also holds the maps, earlier .vsix files and the bench bundle: not shipped anyway.
      filter: (src) => !/\.(map|vsix)$/.test(src) && !src.startsWith(join(ROOT, 'dist', 'node_modules')),
    });
  }
  writeFileSync(join(dir, '.vscodeignore'), `${ignore.trimEnd()}\n!dist/node_modules/**\n`);

  // webgpu as published: its index.js needs nothing but Node's built-ins and the binary.
  const wg = join(dir, 'dist', 'node_modules', 'webgpu');
  mkdirSync(wg, { recursive: true });
  for (const f of ['package.json', 'index.js', 'LICENSE.md']) cpSync(join(WEBGPU, f), join(wg, f));
  cpSync(join(WEBGPU, 'dist', TARGETS[target]), join(wg, 'dist', TARGETS[target]), { recursive: true });

  // tfjs-backend-webgpu requires @tensorflow/tfjs-core, which the extension only has inside its
  // bundles: bundle it in. tfjs-core keeps its engine and kernel registry on globalThis, so this
  // copy and the bundles' copy share one engine (as they do in a development checkout).
  const tw = join(dir, 'dist', 'node_modules', '@tensorflow', 'tfjs-backend-webgpu');
  const pkg = JSON.parse(readFileSync(join(TFJS_WEBGPU, 'package.json'), 'utf8'));
  await build({
    entryPoints: [join(TFJS_WEBGPU, pkg.main)], outfile: join(tw, pkg.main), bundle: true, platform: 'node', format: 'cjs',
    target: 'node20', logLevel: 'error', legalComments: 'eof', // tfjs is Apache-2.0: keep its notices
  });
  writeFileSync(join(tw, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, main: pkg.main, license: pkg.license }, null, 2));
  const dawn = statSync(join(wg, 'dist', TARGETS[target], 'dawn.node')).size;
  return { dawn };
}

async function packageTarget(target) {
  const dir = mkdtempSync(join(tmpdir(), `idc-vsix-${target}-`));
  try {
    const { dawn } = await stage(target, dir);
    const out = join(ROOT, 'dist', `idc-inspector-${target}.vsix`);
    const vsce = join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
    const r = spawnSync(process.execPath, [vsce, 'package', '--target', target, '--no-dependencies', '--no-rewrite-relative-links', '--out', out],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) fail(`vsce package --target ${target} failed:\n${r.stdout}${r.stderr}`);
    console.log(`${target}: ${out} (${mib(statSync(out).size)}; Dawn ${TARGETS[target]}/dawn.node ${mib(dawn)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { stage: { type: 'string' } } });
  if (values.stage) {
    if (positionals.length !== 1) fail('--stage DIR takes exactly one target, e.g. --stage /tmp/ext linux-x64', 2);
    const dir = resolve(values.stage);
    if (existsSync(dir) && readdirSync(dir).length) fail(`--stage ${dir} is not empty: give a new or empty folder.`, 2);
    mkdirSync(dir, { recursive: true });
    await stage(positionals[0], dir);
    console.log(`${positionals[0]}: staged in ${dir}`);
    return;
  }
  const targets = positionals.length ? positionals : Object.keys(TARGETS);
  for (const t of targets) checkInputs(t); // every target checked before the first is built
  for (const t of targets) await packageTarget(t);
}

await main();
