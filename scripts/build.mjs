// Bundles every entry point with esbuild. Node targets are CJS (VS Code loads extensions as CJS).
import { build } from 'esbuild';
import { readdirSync, existsSync, copyFileSync, mkdirSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: true, logLevel: 'warning', legalComments: 'none' };
// Native or optional packages stay outside the bundle and are loaded at run time when present.
const external = ['vscode', 'sharp', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'webgpu'];

const nodeEntries = {
  extension: 'src/extension/extension.ts',
  server: 'src/server/server.ts',
  cli: 'src/cli/idc.ts',
  bench: 'bench/bench.ts',
};
const entryPoints = Object.fromEntries(Object.entries(nodeEntries).filter(([, p]) => existsSync(p)));
// Worker-thread entry points live beside the modules that spawn them.
for (const f of readdirSync('src/core', { recursive: true })) {
  const p = String(f);
  if (p.endsWith('.worker.ts')) entryPoints[p.replace(/.*\//, '').replace(/\.ts$/, '')] = `src/core/${p}`;
}

await build({
  ...common, entryPoints, outdir: 'dist', platform: 'node', format: 'cjs', target: 'node20', external,
});
// The wasm backend loads its binaries from beside the bundle at run time.
const wasmDist = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
mkdirSync('dist', { recursive: true });
for (const f of readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) copyFileSync(`${wasmDist}/${f}`, `dist/${f}`);

const webviews = existsSync('webview') ? readdirSync('webview').filter((f) => f.endsWith('.ts')) : [];
if (webviews.length) {
  await build({
    ...common, entryPoints: webviews.map((f) => `webview/${f}`), outdir: 'dist/webview',
    platform: 'browser', format: 'esm', target: 'es2022', minify: !watch,
  });
  // vscode-elements draws its icons with the codicon font, which the page links by id.
  for (const f of ['codicon.css', 'codicon.ttf']) copyFileSync(`node_modules/@vscode/codicons/dist/${f}`, `dist/webview/${f}`);
}
