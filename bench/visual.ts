/**
 * Speed of the visual explanations on this machine.
 *   node --import tsx bench/visual.ts [--patches 2000] [--cams 64] [--runs 3] [--out dir]
 * Slide map of one synthetic patient (raw-buffer renderer vs compositing the tiles with sharp),
 * and Grad-CAM of the default model on the wasm backend. --out writes the images for a look.
 */
import * as os from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/engine/backends';
import { buildModel } from '../src/core/engine/model';
import { gradCam, gradCamOverlayPng } from '../src/core/visual/gradcam';
import { renderSlideRgb, slideMap, type SlideTile } from '../src/core/visual/slidemap';
import { Rng } from '../src/core/rng';

const { values: args } = parseArgs({
  options: { patches: { type: 'string', default: '2000' }, cams: { type: 'string', default: '64' }, runs: { type: 'string', default: '3' }, out: { type: 'string' } },
});
const nPatches = Number(args.patches), nCams = Number(args.cams), runs = Number(args.runs);

/** Best wall and CPU milliseconds over `runs` calls after one warm-up. */
async function time<T>(f: () => Promise<T> | T): Promise<{ wall: number; cpu: number; result: T }> {
  let result = await f();
  let wall = Infinity, cpu = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now(), c = process.cpuUsage();
    result = await f();
    const dc = process.cpuUsage(c);
    wall = Math.min(wall, performance.now() - t);
    cpu = Math.min(cpu, (dc.user + dc.system) / 1000);
  }
  return { wall, cpu, result };
}

const ms = (t: { wall: number; cpu: number }) => `${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU`;

/** A roughly elliptical patient with textured pink/purple patches and a positive region. */
function patient(n: number): SlideTile[] {
  const rng = new Rng('bench-visual');
  const cols = Math.ceil(Math.sqrt(n * 1.35)), rows = Math.ceil(n / cols * 1.35);
  const cells: { c: number; r: number; d: number }[] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const dx = (c - cols / 2) / (cols / 2), dy = (r - rows / 2) / (rows / 2);
    cells.push({ c, r, d: dx * dx + dy * dy + 0.15 * rng.next() });
  }
  cells.sort((a, b) => a.d - b.d);
  return cells.slice(0, n).map(({ c, r }) => {
    const px = new Uint8Array(7500);
    const base = [200 + rng.int(0, 40), 120 + rng.int(0, 60), 170 + rng.int(0, 50)];
    for (let i = 0; i < 7500; i += 3) {
      const d = rng.next() < 0.1 ? 90 : rng.int(0, 25);
      px[i] = base[0] - d; px[i + 1] = base[1] - d; px[i + 2] = base[2] - d / 2;
    }
    const label = (c - cols * 0.35) ** 2 + (r - rows * 0.4) ** 2 < (cols * 0.2) ** 2 ? 1 : 0;
    const score = Math.min(1, Math.max(0, (label ? 0.7 : 0.25) + 0.25 * rng.normal(0, 1)));
    return { id: `p_x${1 + 50 * c}_y${1 + 50 * r}`, x: 1 + 50 * c, y: 1 + 50 * r, label, score, pixels: px } as SlideTile;
  });
}

/** The alternative: each tile a sharp composite input at native scale, then one resize. */
async function sharpComposite(tiles: SlideTile[], tile: number): Promise<Buffer> {
  const minX = Math.min(...tiles.map((t) => t.x)), minY = Math.min(...tiles.map((t) => t.y));
  const w = Math.max(...tiles.map((t) => t.x)) - minX + 50, h = Math.max(...tiles.map((t) => t.y)) - minY + 50;
  const canvas = await sharp({ create: { width: w, height: h, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((t) => ({ input: Buffer.from(t.pixels.buffer, t.pixels.byteOffset, 7500), raw: { width: 50, height: 50, channels: 3 as const }, left: t.x - minX, top: t.y - minY })))
    .raw().toBuffer();
  return sharp(canvas, { raw: { width: w, height: h, channels: 3 } }).resize(Math.round(w * tile / 50), Math.round(h * tile / 50), { kernel: 'cubic' }).png({ compressionLevel: 3 }).toBuffer();
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, sharp concurrency ${sharp.concurrency()}`);
  const tiles = patient(nPatches);
  const opts = { threshold: 0.5 };

  const raw = await time(() => renderSlideRgb(tiles, opts));
  const r = raw.result;
  console.log(`slide map, ${tiles.length} patches → ${r.width}x${r.height} px (tile ${r.tileRects[0].size} px, ${r.falseNegatives} FN, ${r.falsePositives} FP)`);
  console.log(`  draw raw RGB            ${ms(raw)}`);
  for (const level of [1, 3, 6]) {
    const enc = await time(() => sharp(r.rgb, { raw: { width: r.width, height: r.height, channels: 3 } }).png({ compressionLevel: level }).toBuffer());
    console.log(`  PNG encode, level ${level}    ${ms(enc)}, ${(enc.result.length / 1e6).toFixed(2)} MB`);
  }
  const full = await time(() => slideMap(tiles, opts));
  console.log(`  slideMap (draw+encode)  ${ms(full)}, ${(full.result.png.length / 1e6).toFixed(2)} MB  ← target < 2000 ms`);
  const native = await time(() => slideMap(tiles, { ...opts, scale: 1 }));
  console.log(`  slideMap at scale 1     ${ms(native)} (${native.result.width}x${native.result.height})`);
  const comp = await time(() => sharpComposite(tiles, r.tileRects[0].size));
  console.log(`  sharp composite (tissue only, then resize + encode) ${ms(comp)}`);

  await initBackend('wasm');
  const model = buildModel({ seed: 2 }); // seed 1's untrained maps are all zero (no positive evidence)
  const px = new Uint8Array(nCams * 7500);
  tiles.slice(0, nCams).forEach((t, i) => px.set(t.pixels, i * 7500));
  const cam = await time(() => gradCam(model, px, nCams));
  console.log(`Grad-CAM, default model, ${tf.getBackend()}, ${nCams} patches: ${ms(cam)} (${cam.result.filter((m) => m.some((v) => v > 0)).length} non-zero maps)`);
  const overlays = await time(() => Promise.all(cam.result.map((m, i) => gradCamOverlayPng(px.subarray(i * 7500, (i + 1) * 7500), m))));
  console.log(`  ${nCams} overlay PNGs (200 px): ${ms(overlays)}`);

  if (args.out) {
    mkdirSync(args.out, { recursive: true });
    writeFileSync(join(args.out, 'slide.png'), full.result.png);
    writeFileSync(join(args.out, 'slide-composite.png'), comp.result);
    overlays.result.slice(0, 4).forEach((p, i) => writeFileSync(join(args.out!, `gradcam-${i}.png`), p));
    console.log(`images in ${args.out}`);
  }
}

void main();
