import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths, type BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { IdcError } from '../errors';
import { BN_TRAIN, BN_TRAIN_GRAD, bnGradCoefficients, registerCpuBatchNormKernels } from './fused-bn';
import { simdKernels, type SimdKernels } from './simd';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type KernelArgs = { inputs: Record<string, Info>; backend: BackendWasm; attrs?: Attrs };
type Kfn = (args: KernelArgs) => Info | Info[];

const BACKEND = 'wasm';
const WASM_FILE = 'tfjs-backend-wasm-simd.wasm';

// ---------------------------------------------------------------- backend start-up

function defaultWasmDirs(): string[] {
  // Bundled: the .wasm files sit beside dist/*.js. Dev/tests: take them from node_modules.
  const dirs = [__dirname];
  try {
    dirs.push(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch { /* bundled without node_modules */ }
  return dirs;
}

/**
 * Starts the wasm backend (SIMD; single-threaded under Node) with the training kernels installed and
 * makes it current. `wasmDir` is the folder holding the tfjs-backend-wasm*.wasm files.
 */
export async function initWasmBackend(wasmDir?: string): Promise<void> {
  registerWasmTrainingKernels();
  if (tf.getBackend() === BACKEND) return;
  if (!tf.engine().registryFactory[BACKEND]) {
    throw new IdcError('The wasm backend is not loaded.', "Import '@tensorflow/tfjs-backend-wasm' first.", 'WASM_INIT');
  }
  if (!tf.engine().registry[BACKEND]) {
    const dirs = wasmDir ? [wasmDir] : defaultWasmDirs();
    const dir = dirs.find((d) => fs.existsSync(path.join(d, WASM_FILE)));
    if (!dir) {
      throw new IdcError(`Cannot find ${WASM_FILE} in ${dirs.join(', ')}.`,
        'Reinstall the extension, or point the wasm directory at a folder holding the tfjs .wasm files.', 'WASM_MISSING');
    }
    setWasmPaths(/[\\/]$/.test(dir) ? dir : dir + path.sep);
  }
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  const listeners = (e: (typeof events)[number]) => process.listeners(e as 'uncaughtException');
  const before = events.map(listeners);
  const ok = await tf.setBackend(BACKEND);
  // Emscripten's Node glue adds process handlers that rethrow, which would take down a shared host
  // process (VS Code's extension host) on any stray error.
  events.forEach((e, i) => {
    for (const l of listeners(e)) if (!before[i].includes(l)) process.removeListener(e as 'uncaughtException', l);
  });
  if (!ok) throw new IdcError('The TensorFlow.js wasm backend failed to start.', 'Check that the .wasm files are intact.', 'WASM_INIT');
}

// ---------------------------------------------------------------- composition helpers
// Kernels below compose stock wasm kernels on TensorInfos (no tape, no engine bookkeeping) and free
// their intermediates; XNNPACK-backed ones (Conv2D, depthwise conv, AvgPool, same-shape binary ops)
// run ~10x faster than the generic C++ loops and JS.

/** Originals saved before overriding, so fallbacks and compositions call the stock kernel. */
const originals = new Map<string, tf.KernelConfig>();

function stock(name: string): Kfn {
  const cfg = originals.get(name) ?? tf.getKernel(name, BACKEND);
  if (!cfg) throw new Error(`wasm kernel ${name} is missing`);
  return cfg.kernelFunc as unknown as Kfn;
}

function run(b: BackendWasm, name: string, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
  return stock(name)({ inputs, backend: b, attrs }) as Info;
}

function free(b: BackendWasm, ...infos: Array<Info | undefined>): void {
  for (const t of infos) if (t) b.disposeData(t.dataId);
}

/** Same buffer, other shape (no refcount: callers free the original only). */
function view(t: Info, shape: number[]): Info {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

function heap(b: BackendWasm, t: Info): Float32Array {
  return b.typedArrayFromHeap(t) as Float32Array;
}

/** Byte offset of a tensor's data in the wasm heap. */
function ptr(b: BackendWasm, t: Info): number {
  return b.dataIdMap.get(t.dataId)!.memoryOffset;
}

function simd(b: BackendWasm): SimdKernels | null {
  const memory = (b.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  return memory instanceof WebAssembly.Memory ? simdKernels(memory) : null;
}

/**
 * Column sums of [rows, C] data, f32 within chunks of CHUNK rows and f64 across them (a single
 * f32 accumulator over 10⁵ rows would lose ~3 digits). `pass(rowStart, n, acc1, acc2)` adds a chunk.
 */
const CHUNK = 1024;
function chunkedSums(b: BackendWasm, C: number, rows: number, pass: (r0: number, n: number, acc1: number, acc2: number) => void): [Float64Array, Float64Array] {
  const scratch = b.makeOutput([2 * C], 'float32');
  const acc1 = ptr(b, scratch), acc2 = acc1 + 4 * C;
  const s1 = new Float64Array(C), s2 = new Float64Array(C);
  const acc = heap(b, scratch); // nothing allocates in the loop, so the view stays valid
  for (let r0 = 0; r0 < rows; r0 += CHUNK) {
    acc.fill(0);
    pass(r0, Math.min(CHUNK, rows - r0), acc1, acc2);
    for (let c = 0; c < C; c++) { s1[c] += acc[c]; s2[c] += acc[C + c]; }
  }
  free(b, scratch);
  return [s1, s2];
}

function vector(b: BackendWasm, values: ArrayLike<number>): Info {
  const out = b.makeOutput([values.length], 'float32');
  heap(b, out).set(values);
  return out;
}

const size = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

function transpose(b: BackendWasm, x: Info, perm: number[]): Info {
  return run(b, 'Transpose', { x }, { perm });
}

function slice4(b: BackendWasm, x: Info, shape: number[]): Info {
  if (shape.every((s, i) => s === x.shape[i])) return x;
  const out = run(b, 'Slice', { x }, { begin: [0, 0, 0, 0], size: shape });
  free(b, x);
  return out;
}

function conv(b: BackendWasm, x: Info, filter: Info, dilations: [number, number], pads: [number, number, number, number]): Info {
  const [t, bt, l, r] = pads;
  return run(b, 'Conv2D', { x, filter }, {
    strides: [1, 1], dilations, pad: [[0, 0], [t, bt], [l, r], [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined,
  });
}

/** y = x·scale[c] + bias[c] over the last axis, as a 1x1 depthwise conv (XNNPACK's vmulcaddc path). */
function affine(b: BackendWasm, x: Info, scale: Info, bias: Info | null, activation: 'linear' | 'relu' = 'linear'): Info {
  const C = x.shape[x.shape.length - 1];
  const out = run(b, 'FusedDepthwiseConv2D', { x: view(x, [1, 1, size(x.shape) / C, C]), filter: view(scale, [1, 1, C, 1]), ...(bias ? { bias } : {}) }, {
    strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC', dimRoundingMode: undefined, activation,
  });
  return view(out, x.shape);
}

function avgPool(b: BackendWasm, x: Info, window: [number, number]): Info {
  return run(b, 'AvgPool', { x }, { filterSize: window, strides: window, pad: 'valid', dimRoundingMode: undefined });
}

/**
 * Mean over `rows` consecutive blocks of `inner` elements per group: x viewed as [outer, rows, inner]
 * → [outer, inner], via XNNPACK average pooling in two stages (√-ish split) for accuracy.
 */
function blockMean(b: BackendWasm, x: Info, outer: number, rows: number, inner: number): Info {
  if (rows === 1) return run(b, tf.Identity, { x: view(x, [outer, inner]) }); // a copy: callers scale in place
  // Split rows = r1·r2 with r2 the largest divisor ≤ √rows, so each stage sums few terms.
  let r2 = Math.floor(Math.sqrt(rows));
  while (rows % r2 !== 0) r2--;
  const r1 = rows / r2;
  if (r2 === 1) return view(avgPool(b, view(x, [outer, 1, rows, inner]), [1, rows]), [outer, inner]);
  const s1 = avgPool(b, view(x, [outer * r1, 1, r2, inner]), [1, r2]);
  const s2 = avgPool(b, view(s1, [outer, 1, r1, inner]), [1, r1]);
  free(b, s1);
  return view(s2, [outer, inner]);
}

function scaleInPlace(b: BackendWasm, t: Info, factor: number): Info {
  const a = heap(b, t);
  for (let i = 0; i < a.length; i++) a[i] *= factor;
  return t;
}

/** Per-channel (last axis) mean / sum of a float tensor. */
function channelMean(b: BackendWasm, x: Info): Info {
  const C = x.shape[x.shape.length - 1];
  return view(blockMean(b, x, 1, size(x.shape) / C, C), [C]);
}
function channelSum(b: BackendWasm, x: Info): Info {
  const C = x.shape[x.shape.length - 1];
  return scaleInPlace(b, channelMean(b, x), size(x.shape) / C);
}

function convInfo(xShape: number[], filterShape: number[], strides: unknown, pad: unknown, dimRoundingMode: unknown): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides as [number, number], 1, pad as 'same', dimRoundingMode as 'floor', false, 'channelsLast');
}

// ---------------------------------------------------------------- convolution gradients

/**
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·s+kh−pt, ow·s+kw−pl, ci] · dy[b,oh,ow,co]:
 * a conv of x with batch and channels swapped, using dy as the filter; the forward stride becomes
 * the dilation. Output rows past KH (unused bottom/right input) are sliced off.
 */
function conv2DBackpropFilter({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { x, dy } = inputs;
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (a.dataFormat === 'NCHW') throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const ci = convInfo(x.shape, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = ci;
  const { top, left } = ci.padInfo;
  const [, H, W] = x.shape;
  const bottom = Math.max(0, (oh - 1) * sh + kh - H - top);
  const right = Math.max(0, (ow - 1) * sw + kw - W - left);
  const xT = transpose(b, x, [3, 1, 2, 0]); // [Ci, H, W, B]
  const dyT = transpose(b, dy, [1, 2, 0, 3]); // [OH, OW, B, Co]
  let r = conv(b, xT, dyT, [sh, sw], [top, bottom, left, right]); // [Ci, ≥KH, ≥KW, Co]
  free(b, xT, dyT);
  r = slice4(b, r, [ci.inChannels, kh, kw, ci.outChannels]);
  const out = transpose(b, r, [1, 2, 0, 3]);
  free(b, r);
  return out;
}

/**
 * dX = conv of dy (zero-dilated by the stride, padded by K−1−p) with the filter reversed in space
 * and in/out channels swapped. Pads beyond the kernel (never produced by 'same'/'valid') fall back.
 */
function conv2DBackpropInput(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  const { dy, filter } = inputs;
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const ci = convInfo(a.inputShape, filter.shape, a.strides, a.pad, a.dimRoundingMode);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = ci;
  const [N, H, W] = a.inputShape;
  const pt = kh - 1 - ci.padInfo.top;
  const pl = kw - 1 - ci.padInfo.left;
  if (a.dataFormat === 'NCHW' || pt < 0 || pl < 0) return stock(tf.Conv2DBackpropInput)(args) as Info;
  const g = sh > 1 || sw > 1 ? dilate(b, dy, sh, sw) : dy;
  const gh = (oh - 1) * sh + 1;
  const gw = (ow - 1) * sw + 1;
  const pb = Math.max(0, H - 1 + kh - gh - pt);
  const pr = Math.max(0, W - 1 + kw - gw - pl);
  const wT = flipFilter(b, filter);
  const r = conv(b, g, wT, [1, 1], [pt, pb, pl, pr]);
  free(b, wT);
  if (g !== dy) free(b, g);
  return slice4(b, r, [N, H, W, ci.inChannels]);
}

/** W[kh,kw,ci,co] → W'[KH−1−kh, KW−1−kw, co, ci] in one JS pass (stock Reverse is a slow generic loop). */
function flipFilter(b: BackendWasm, filter: Info): Info {
  const [KH, KW, Ci, Co] = filter.shape;
  const out = b.makeOutput([KH, KW, Co, Ci], 'float32');
  const src = heap(b, filter), dst = heap(b, out);
  for (let h = 0; h < KH; h++) {
    for (let w = 0; w < KW; w++) {
      const s0 = (h * KW + w) * Ci * Co, d0 = ((KH - 1 - h) * KW + (KW - 1 - w)) * Co * Ci;
      for (let i = 0; i < Ci; i++) for (let o = 0; o < Co; o++) dst[d0 + o * Ci + i] = src[s0 + i * Co + o];
    }
  }
  return out;
}

/** Inserts (s−1) zeros between rows/cols: [B,OH,OW,C] → [B,(OH−1)·sh+1,(OW−1)·sw+1,C]. */
function dilate(b: BackendWasm, x: Info, sh: number, sw: number): Info {
  const [B, h, w, C] = x.shape;
  const out = b.makeOutput([B, (h - 1) * sh + 1, (w - 1) * sw + 1, C], 'float32');
  const src = heap(b, x);
  const dst = heap(b, out);
  dst.fill(0);
  const H2 = out.shape[1], W2 = out.shape[2];
  for (let n = 0; n < B; n++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const s = ((n * h + i) * w + j) * C;
        dst.set(src.subarray(s, s + C), ((n * H2 + i * sh) * W2 + j * sw) * C);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- pooling, tiling, reductions

/** First-max routing like the cpu backend; JS scan per window (the stock C++ kernel is ~10x slower). */
function maxPoolGrad({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { dy, input } = inputs;
  const a = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const dx = b.makeOutput(input.shape, 'float32');
  const k = simd(b);
  const p = info.padInfo;
  const plain2x2 = info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2 &&
    p.top === 0 && p.left === 0 && 2 * info.outHeight <= info.inHeight && 2 * info.outWidth <= info.inWidth;
  if (k && plain2x2 && info.inChannels % 4 === 0) {
    // Odd heights/widths leave a last row/column that no window reads.
    if (2 * info.outHeight < info.inHeight || 2 * info.outWidth < info.inWidth) heap(b, dx).fill(0);
    k.maxPoolGrad2x2(ptr(b, input), ptr(b, dy), ptr(b, dx), info.batchSize, info.outHeight, info.outWidth, info.inChannels, info.inHeight, info.inWidth);
    return dx;
  }
  maxPoolGradLoop(heap(b, input), heap(b, dy), heap(b, dx), info);
  return dx;
}

function maxPoolGradLoop(x: Float32Array, dy: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight: dh, dilationWidth: dw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  dx.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let n = 0; n < B; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        best.fill(-Infinity);
        at.fill(-1);
        const h0 = oh * sh - top, w0 = ow * sw - left;
        for (let r = 0; r < fh; r += dh) {
          const h = h0 + r;
          if (h < 0 || h >= H) continue;
          for (let s = 0; s < fw; s += dw) {
            const w = w0 + s;
            if (w < 0 || w >= W) continue;
            const base = ((n * H + h) * W + w) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c];
              if (v > best[c]) { best[c] = v; at[c] = base + c; }
            }
          }
        }
        const o = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) if (at[c] >= 0) dx[at[c]] += dy[o + c];
      }
    }
  }
}

/**
 * Tile by block copies on the heap: each repeated axis, innermost first, expands rows in place from
 * the back (BatchNorm/Mean gradients tile [1,1,1,C] or [B,1,1,C] up to full activations).
 */
function tile(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  const { x } = inputs;
  if (x.dtype === 'string') return stock(tf.Tile)(args) as Info;
  const reps = (attrs as unknown as tf.TileAttrs).reps;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = b.makeOutput(outShape, x.dtype);
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  if (dst.length === 0) return out;
  dst.set(src, 0);
  const shape = x.shape.slice();
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const r = reps[axis];
    if (r === 1) continue;
    const rowLen = size(shape.slice(axis));
    const outer = size(shape.slice(0, axis));
    const newLen = rowLen * r;
    for (let o = outer - 1; o >= 0; o--) {
      const start = o * newLen;
      if (o > 0) dst.copyWithin(start, o * rowLen, (o + 1) * rowLen);
      for (let filled = rowLen; filled < newLen; filled *= 2) {
        dst.copyWithin(start + filled, start, start + Math.min(filled, newLen - filled));
      }
    }
    shape[axis] *= r;
  }
  return out;
}

/** Shares the buffer like the cpu backend (wasm copies; tfjs clones every tensor a customGrad saves). */
function identity({ inputs, backend: b }: KernelArgs): Info {
  const { x } = inputs;
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function cast(args: KernelArgs): Info {
  const { x } = args.inputs;
  if ((args.attrs as unknown as tf.CastAttrs).dtype === x.dtype) return identity(args);
  return stock(tf.Cast)(args) as Info;
}

/**
 * Sum/Mean over leading axes (…, C) or the spatial axes of NHWC via average pooling; the stock
 * kernels transpose the reduced axes inward first, which is slow on big activations.
 */
function reduce(kind: 'Sum' | 'Mean') {
  return (args: KernelArgs): Info => {
    const { inputs: { x }, backend: b, attrs } = args;
    const a = attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(a.axis, x.shape).sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.length < rank && axes.every((ax, i) => ax === i);
    const spatial = rank === 4 && axes.length === 2 && axes[0] === 1 && axes[1] === 2;
    if (x.dtype !== 'float32' || !(leading || spatial) || size(x.shape) === 0) return stock(kind)(args) as Info;
    const outer = spatial ? x.shape[0] : 1;
    const rows = size(axes.map((ax) => x.shape[ax]));
    const inner = size(x.shape) / outer / rows;
    let r = blockMean(b, x, outer, rows, inner);
    if (kind === 'Sum') r = scaleInPlace(b, r, rows);
    const outShape = a.keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return view(r, outShape);
  };
}

// ---------------------------------------------------------------- batch norm

function channelVec(b: BackendWasm, t: Info | undefined, C: number, fill: number): Float32Array {
  if (!t) return new Float32Array(C).fill(fill);
  const v = heap(b, t);
  if (v.length === C) return v.slice();
  if (v.length === 1) return new Float32Array(C).fill(v[0]);
  throw new Error('unsupported');
}

/** Inference batch norm as one per-channel affine pass (the stock C++ loop is ~15x slower). */
function fusedBatchNorm(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  const { x, mean, variance, offset, scale } = inputs;
  const C = x.shape[x.shape.length - 1];
  const eps = (attrs as unknown as tf.FusedBatchNormAttrs).varianceEpsilon;
  const sizes = [mean, variance, offset, scale].filter(Boolean).map((t) => size(t!.shape));
  if (x.dtype !== 'float32' || x.shape.length < 2 || !sizes.every((n) => n === C || n === 1)) return stock(tf.FusedBatchNorm)(args) as Info;
  const m = channelVec(b, mean, C, 0), v = channelVec(b, variance, C, 1), o = channelVec(b, offset, C, 0), g = channelVec(b, scale, C, 1);
  const k = new Float32Array(C), sh = new Float32Array(C);
  for (let c = 0; c < C; c++) { k[c] = g[c] / Math.sqrt(v[c] + eps); sh[c] = o[c] - m[c] * k[c]; }
  const kT = vector(b, k), shT = vector(b, sh);
  const y = affine(b, x, kT, shT);
  free(b, kT, shT);
  return y;
}

/** Outputs y, mean, variance, x − mean; see fused-bn.ts. Three SIMD passes: Σx, (x−μ and Σ(x−μ)²), y. */
function bnTrain(args: KernelArgs): Info[] {
  const { inputs: { x, gamma, beta }, backend: b, attrs } = args;
  const eps = attrs!.epsilon as number;
  const C = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / C;
  const k = simd(b);
  if (!k || C % 4 !== 0 || rows === 0) return bnTrainComposed(args);
  const xc = b.makeOutput(x.shape, 'float32');
  const y = b.makeOutput(x.shape, 'float32');
  const mean = b.makeOutput([C], 'float32');
  const variance = b.makeOutput([C], 'float32');
  const px = ptr(b, x), pxc = ptr(b, xc), row = 4 * C;
  const [sx] = chunkedSums(b, C, rows, (r0, n, acc) => k.colsum(px + r0 * row, acc, n, C));
  heap(b, mean).set(sx.map((v) => v / rows));
  const pm = ptr(b, mean);
  const [sq] = chunkedSums(b, C, rows, (r0, n, acc) => k.centerSq(px + r0 * row, pm, pxc + r0 * row, acc, n, C));
  heap(b, variance).set(sq.map((v) => v / rows));
  const g = heap(b, gamma), v = heap(b, variance);
  const scale = vector(b, g.map((gc, c) => gc / Math.sqrt(v[c] + eps)));
  const zeros = vector(b, new Float32Array(C));
  k.affine2(pxc, pxc, ptr(b, scale), ptr(b, zeros), ptr(b, beta), ptr(b, y), rows, C);
  free(b, scale, zeros);
  return [y, mean, variance, xc];
}

/** Same outputs from XNNPACK passes (any channel count). */
function bnTrainComposed({ inputs, backend: b, attrs }: KernelArgs): Info[] {
  const { x, gamma, beta } = inputs;
  const eps = attrs!.epsilon as number;
  const C = x.shape[x.shape.length - 1];
  const mean = channelMean(b, x);
  const negMean = vector(b, heap(b, mean).map((v) => -v));
  const ones = vector(b, new Float32Array(C).fill(1));
  const xc = affine(b, x, ones, negMean);
  const sq = run(b, 'Square', { x: xc });
  const variance = channelMean(b, sq);
  free(b, sq, negMean, ones);
  const g = heap(b, gamma), v = heap(b, variance);
  const k = vector(b, g.map((gc, c) => gc / Math.sqrt(v[c] + eps)));
  const y = affine(b, xc, k, beta);
  free(b, k);
  return [y, mean, variance, xc];
}

function bnTrainGrad({ inputs, backend: b, attrs }: KernelArgs): Info[] {
  const { dy, xc, gamma, variance } = inputs;
  const C = gamma.shape[0];
  const n = size(dy.shape) / C;
  const k = simd(b);
  if (k && C % 4 === 0 && n > 0) {
    // Two SIMD passes: Σdy and Σdy·xc together, then dx = k·dy + m·xc + q.
    const pdy = ptr(b, dy), pxc = ptr(b, xc), row = 4 * C;
    const [sDy, sDyXc] = chunkedSums(b, C, n, (r0, rn, a1, a2) => k.colsum2(pdy + r0 * row, pxc + r0 * row, a1, a2, rn, C));
    const co = bnGradCoefficients(sDy, sDyXc, heap(b, gamma), heap(b, variance), attrs!.epsilon as number, n);
    const dx = b.makeOutput(dy.shape, 'float32');
    const kT = vector(b, co.k), mT = vector(b, co.m), qT = vector(b, co.q);
    k.affine2(pdy, pxc, ptr(b, kT), ptr(b, mT), ptr(b, qT), ptr(b, dx), n, C);
    free(b, kT, mT, qT);
    return [dx, vector(b, co.dgamma), vector(b, co.dbeta)];
  }
  const sDy = channelSum(b, dy);
  const p = run(b, 'Multiply', { a: dy, b: xc });
  const sDyXc = channelSum(b, p);
  free(b, p);
  const co = bnGradCoefficients(heap(b, sDy), heap(b, sDyXc), heap(b, gamma), heap(b, variance), attrs!.epsilon as number, n);
  free(b, sDy, sDyXc);
  const kT = vector(b, co.k), qT = vector(b, co.q), mT = vector(b, co.m);
  const t1 = affine(b, dy, kT, qT);
  const t2 = affine(b, xc, mT, null);
  const dx = run(b, 'Add', { a: t1, b: t2 });
  free(b, kT, qT, mT, t1, t2);
  return [view(dx, dy.shape), vector(b, co.dgamma), vector(b, co.dbeta)];
}

// ---------------------------------------------------------------- relu

/** dy where x > 0, else 0: one pass instead of Step + Multiply. */
export const RELU_GRAD = 'IdcReluGrad';

function reluGradKernel({ inputs: { dy, x }, backend: b }: KernelArgs): Info {
  const out = b.makeOutput(x.shape, 'float32');
  const n = size(x.shape), n4 = n - (n % 4);
  const k = simd(b);
  if (k) k.reluGrad(ptr(b, x), ptr(b, dy), ptr(b, out), n4);
  const xv = heap(b, x), dv = heap(b, dy), ov = heap(b, out);
  for (let i = k ? n4 : 0; i < n; i++) ov[i] = xv[i] > 0 ? dv[i] : 0;
  return out;
}

// ---------------------------------------------------------------- gradients

/**
 * Mean/Sum gradients without `ones(x.shape)`: tfjs builds that array in JS and uploads it, ~30 ms
 * for a 32×50×50×32 activation. Same math, any backend; replaces the global registrations.
 */
function reduceGrad(kind: 'Sum' | 'Mean'): tf.GradConfig {
  return {
    kernelName: kind,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
      const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const reps = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
      const n = kind === 'Mean' ? size(axes.map((ax) => x.shape[ax])) : 1;
      return {
        x: () => tf.tidy(() => {
          let g = tf.cast(dy as tf.Tensor, 'float32');
          if (n !== 1) g = tf.div(g, n);
          return tf.tile(tf.reshape(g, expanded), reps);
        }),
      };
    },
  };
}

/** Relu gradient through RELU_GRAD where the backend has it; tfjs's dy·step(x) elsewhere (same values). */
const reluGradConfig: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return {
      x: () => (x.dtype === 'float32' && tf.getKernel(RELU_GRAD, tf.getBackend())
        ? tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor
        : tf.mul(dy as tf.Tensor, tf.step(tf.cast(x, 'float32')))),
    };
  },
};

// ---------------------------------------------------------------- registration

const OVERRIDES: Array<[string, Kfn]> = [
  [tf.Conv2DBackpropFilter, conv2DBackpropFilter],
  [tf.Conv2DBackpropInput, conv2DBackpropInput],
  [tf.MaxPoolGrad, maxPoolGrad],
  [tf.Tile, tile],
  [tf.Identity, identity],
  [tf.Cast, cast],
  [tf.Sum, reduce('Sum')],
  [tf.Mean, reduce('Mean')],
  [tf.FusedBatchNorm, fusedBatchNorm],
  [BN_TRAIN, bnTrain],
  [BN_TRAIN_GRAD, bnTrainGrad],
  [RELU_GRAD, reluGradKernel],
];

const MARK = Symbol.for('idc.wasmKernel');
type Marked = tf.KernelConfig & { [MARK]?: true };

/**
 * Installs fast training kernels for the 'wasm' backend (and the cpu reference for the fused batch
 * norm). Idempotent; works before or after the backend starts.
 */
export function registerWasmTrainingKernels(): void {
  registerCpuBatchNormKernels();
  for (const [name, fn] of OVERRIDES) {
    const cur = tf.getKernel(name, BACKEND) as Marked | undefined;
    if (cur?.[MARK]) continue;
    if (cur) {
      originals.set(name, cur);
      tf.unregisterKernel(name, BACKEND);
    }
    // Keep the stock setup so delegated calls find their wasm bindings even when registered before init.
    const cfg: Marked = { kernelName: name, backendName: BACKEND, kernelFunc: fn as unknown as tf.KernelFunc, setupFunc: cur?.setupFunc, [MARK]: true };
    tf.registerKernel(cfg);
  }
  for (const grad of [reduceGrad('Sum'), reduceGrad('Mean'), reluGradConfig]) {
    const cur = tf.getGradient(grad.kernelName) as (tf.GradConfig & { [MARK]?: true }) | undefined;
    if (cur?.[MARK]) continue;
    if (cur) tf.unregisterGradient(grad.kernelName);
    tf.registerGradient({ ...grad, [MARK]: true } as tf.GradConfig);
  }
}
