import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { encodeRgbPng } from './png-encode';
import { IdcError, cancellationPoint } from '../errors';
import { VIRIDIS, lutIndex } from './colormap';

/**
 * Grad-CAM (Selvaraju et al. 2017) for layers models: which parts of a patch drove the IDC(+) score.
 *
 * The model is not rebuilt or split into new models: its functional graph (the SymbolicTensors
 * reachable from `model.outputs`) is walked and executed layer by layer on concrete tensors, so
 * the activation A can be fed back in as a variable and ∂score/∂A taken with tf.grad. That works
 * for buildModel's models, loaded ones, Sequential models, branches and skips, and never adds
 * nodes to the model's layers.
 */

type ST = tfl.SymbolicTensor;
type GraphNode = tfl.layers.Layer['inboundNodes'][number];

const SIDE = 50;
const PATCH = SIDE * SIDE * 3;
const CHUNK = 64;

const CONV = new Set(['Conv2D', 'SeparableConv2D', 'DepthwiseConv2D']);
/** Shape-preserving per-position layers that still belong to the conv's block (stop at pooling). */
const BLOCK_TAIL = new Set([
  'BatchNormalization', 'LayerNormalization', 'ReLU', 'Activation', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU',
  'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
]);

export interface GradCamOptions {
  /** Layer whose (rank-4) output is A. Default: the last conv block's output, see gradCamTarget. */
  layer?: string;
  /** Model input from raw RGB values 0..255 (NHWC). Default x / 255. */
  scale?: (x: Float32Array) => Float32Array;
  /** Checked before each chunk of patches. */
  signal?: AbortSignal;
}

export interface GradCamTarget {
  /** Layer whose output is the activation A. */
  layer: string;
  /** A's shape without the batch axis, e.g. [4, 4, 128]. */
  shape: number[];
  /**
   * What is differentiated: 'logit' — the pre-activation of the output layer's last unit (the IDC(+)
   * logit of a sigmoid head; the class score of a softmax head), which does not saturate the way
   * the probability does; 'output' — the model's last output unit, when its head is not a Dense or
   * Activation with sigmoid/softmax.
   */
  score: 'logit' | 'output';
}

interface Plan {
  input: ST;
  act: ST;
  scoreIn: ST;
  head: (h: tf.Tensor) => tf.Tensor;
  target: GradCamTarget;
}

const nodeOf = (t: ST): GraphNode => t.sourceLayer.inboundNodes[t.nodeIndex];
const isInput = (t: ST) => t.sourceLayer.getClassName() === 'InputLayer';
const sameShape = (a: readonly (number | null)[], b: readonly (number | null)[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The model's graph in topological order, and who consumes each tensor. */
function walk(model: tfl.LayersModel): { order: ST[]; consumers: Map<number, GraphNode[]> } {
  const seen = new Set<number>();
  const order: ST[] = [];
  const consumers = new Map<number, GraphNode[]>();
  const visit = (t: ST): void => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    if (!isInput(t)) {
      const node = nodeOf(t);
      for (const i of node.inputTensors) {
        visit(i);
        const list = consumers.get(i.id) ?? [];
        if (!list.includes(node)) list.push(node);
        consumers.set(i.id, list);
      }
    }
    order.push(t);
  };
  model.outputs.forEach(visit);
  return { order, consumers };
}

function containsConv(m: tfl.LayersModel): boolean {
  return m.layers.some((l) => CONV.has(l.getClassName()) || (l instanceof tfl.LayersModel && containsConv(l)));
}

function namedLayer(order: ST[], name: string, modelName: string): ST {
  const t = [...order].reverse().find((o) => o.sourceLayer.name === name);
  if (t) return t;
  throw new IdcError(`Model "${modelName}" has no layer "${name}" on its path to the output.`,
    `Pick one of: ${[...new Set(order.filter((o) => o.rank === 4).map((o) => o.sourceLayer.name))].join(', ')}.`, 'BAD_LAYER');
}

/** The last conv (or nested model holding convs) followed through BN / activation / dropout, stopping before pooling or a merge. */
function lastConvBlock(order: ST[], consumers: Map<number, GraphNode[]>, model: tfl.LayersModel): ST {
  const conv = [...order].reverse().find((t) => CONV.has(t.sourceLayer.getClassName())
    || (t.sourceLayer instanceof tfl.LayersModel && t.rank === 4 && containsConv(t.sourceLayer)));
  if (!conv) {
    throw new IdcError(`Model "${model.name}" has no Conv2D layer, so Grad-CAM has no spatial map to explain.`,
      'Grad-CAM needs a convolutional model; pass opts.layer to pick a layer with a 4-D output.', 'NO_CONV_LAYER');
  }
  let act: ST = conv;
  for (;;) {
    const cons = consumers.get(act.id) ?? [];
    if (cons.length !== 1) return act;
    const n: GraphNode = cons[0];
    if (!BLOCK_TAIL.has(n.outboundLayer.getClassName()) || n.inputTensors.length !== 1 || n.outputTensors.length !== 1) return act;
    const next: ST = n.outputTensors[0];
    if (!sameShape(next.shape, act.shape) || model.outputs.includes(next)) return act;
    act = next;
  }
}

function plan(model: tfl.LayersModel, layerName?: string): Plan {
  if (model.inputs.length !== 1 || model.outputs.length < 1) {
    throw new IdcError(`Grad-CAM needs a model with one image input; "${model.name}" has ${model.inputs.length}.`, 'Use a single-input classifier.', 'BAD_MODEL');
  }
  const input = model.inputs[0];
  const inShape = input.shape.slice(1);
  if (inShape.length !== 3 || ![SIDE, SIDE, 3].every((d, i) => inShape[i] === null || inShape[i] === d)) {
    throw new IdcError(`Grad-CAM needs a model taking 50x50x3 patches; "${model.name}" takes ${inShape.join('x')}.`, 'Use a model trained on the 50x50 RGB patches.', 'BAD_MODEL');
  }
  const { order, consumers } = walk(model);
  const output = model.outputs[0];

  const act = layerName !== undefined ? namedLayer(order, layerName, model.name) : lastConvBlock(order, consumers, model);
  if (act.rank !== 4) {
    throw new IdcError(`Layer "${act.sourceLayer.name}" outputs shape [${act.shape.join(', ')}], not a spatial map.`, 'Pick a conv-stage layer (4-D output).', 'BAD_LAYER');
  }
  if (model.outputs.includes(act) || isInput(act)) {
    throw new IdcError(`Layer "${act.sourceLayer.name}" is the model's ${isInput(act) ? 'input' : 'output'}; Grad-CAM needs a layer between them.`, 'Pick an inner conv layer.', 'BAD_LAYER');
  }

  // Score: the output layer's pre-activation when it is a sigmoid/softmax head.
  const outNode = nodeOf(output);
  const outLayer = outNode.outboundLayer;
  const cls = outLayer.getClassName();
  const cfg = outLayer.getConfig() as { activation?: string; useBias?: boolean; units?: number };
  const squashed = cfg.activation === 'sigmoid' || cfg.activation === 'softmax';
  const last = (z: tf.Tensor) => {
    const units = z.shape[z.rank - 1]!;
    const s = tf.slice(z, [...z.shape.map(() => 0).slice(0, -1), units - 1], [...z.shape.slice(0, -1), 1]);
    return z.rank > 2 ? tf.sum(s, Array.from({ length: z.rank - 2 }, (_, i) => i + 1)) : s;
  };
  let scoreIn = output, head = last, score: GradCamTarget['score'] = 'output';
  if (squashed && (cls === 'Dense' || cls === 'Activation') && outNode.inputTensors.length === 1) {
    scoreIn = outNode.inputTensors[0];
    score = 'logit';
    if (cls === 'Dense') {
      head = (h) => {
        const [kernel, bias] = outLayer.getWeights();
        const [inDim, units] = kernel.shape;
        let z = tf.matMul(tf.reshape(h, [-1, inDim]), kernel as tf.Tensor2D) as tf.Tensor;
        if (cfg.useBias !== false && bias) z = tf.add(z, bias);
        return last(tf.reshape(z, [...h.shape.slice(0, -1), units]));
      };
    }
  }
  return { input, act, scoreIn, head, target: { layer: act.sourceLayer.name, shape: act.shape.slice(1) as number[], score } };
}

/** Which activation and score gradCam would use for this model (throws as gradCam would). */
export function gradCamTarget(model: tfl.LayersModel, layer?: string): GradCamTarget {
  return plan(model, layer).target;
}

/** Runs the graph up to `t`, reusing and filling `memo` (SymbolicTensor id → value), in inference mode. */
function evaluate(t: ST, memo: Map<number, tf.Tensor>): tf.Tensor {
  const hit = memo.get(t.id);
  if (hit) return hit;
  if (isInput(t)) throw new Error(`Grad-CAM: no value for input ${t.name}`);
  const node = nodeOf(t);
  const ins = node.inputTensors.map((i) => evaluate(i, memo));
  const out = node.outboundLayer.apply(ins.length === 1 ? ins[0] : ins, { ...node.callArgs, training: false });
  const outs = (Array.isArray(out) ? out : [out]) as tf.Tensor[];
  node.outputTensors.forEach((o, i) => memo.set(o.id, outs[i]));
  return memo.get(t.id)!;
}

const divide255 = (x: Float32Array) => {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / 255;
  return out;
};

/**
 * One 50×50 Grad-CAM map per patch, values in [0, 1]: ReLU(Σ_k α_k A_k), α_k the spatial mean of
 * ∂score/∂A_k (score: see GradCamTarget), upsampled bilinearly (half-pixel centres) to the patch
 * and divided by its maximum, so 0 stays "no evidence" and an all-zero map stays zero. A is, by
 * default, the output of the last Conv2D's block: after its BatchNorm/ReLU, before pooling.
 * Patches are N×50×50×3 uint8 RGB. Runs in inference mode (BN moving stats, no dropout).
 */
export async function gradCam(model: tfl.LayersModel, patches: Uint8Array, n: number, opts: GradCamOptions = {}): Promise<Float32Array[]> {
  if (!Number.isInteger(n) || n < 0) throw new IdcError(`Grad-CAM patch count ${n} is not a whole number.`, 'Pass the number of patches.', 'BAD_ARGUMENT');
  if (patches.length < n * PATCH) {
    throw new IdcError(`Grad-CAM got ${patches.length} bytes for ${n} patches; needs ${n * PATCH} (50x50x3 each).`, 'Pass N×50×50×3 RGB bytes.', 'BAD_ARGUMENT');
  }
  const p = plan(model, opts.layer);
  const scale = opts.scale ?? divide255;
  const maps: Float32Array[] = [];
  for (let s = 0; s < n; s += CHUNK) {
    await cancellationPoint(opts.signal);
    const m = Math.min(CHUNK, n - s);
    const x = scale(Float32Array.from(patches.subarray(s * PATCH, (s + m) * PATCH)));
    if (x.length !== m * PATCH) throw new IdcError(`Grad-CAM scale() returned ${x.length} values for ${m * PATCH}.`, 'Return one value per input value.', 'BAD_ARGUMENT');
    const up = tf.tidy(() => {
      const memo = new Map<number, tf.Tensor>([[p.input.id, tf.tensor4d(x, [m, SIDE, SIDE, 3])]]);
      const a = evaluate(p.act, memo);
      const grad = tf.grad((av: tf.Tensor) => {
        const local = new Map(memo);
        local.set(p.act.id, av);
        return tf.sum(p.head(evaluate(p.scoreIn, local)));
      })(a);
      const alpha = tf.mean(grad, [1, 2], true);
      const cam = tf.relu(tf.sum(tf.mul(a, alpha), -1, true)) as tf.Tensor4D;
      return tf.image.resizeBilinear(cam, [SIDE, SIDE], false, true);
    });
    const data = (await up.data()) as Float32Array;
    up.dispose();
    for (let i = 0; i < m; i++) maps.push(normalise(data.slice(i * SIDE * SIDE, (i + 1) * SIDE * SIDE)));
  }
  return maps;
}

function normalise(map: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < map.length; i++) if (map[i] > max) max = map[i];
  if (!(max > 0) || !Number.isFinite(max)) return map.fill(0);
  for (let i = 0; i < map.length; i++) map[i] = map[i] > 0 ? Math.min(1, map[i] / max) : 0;
  return map;
}

// ---------------------------------------------------------------- images

function checkPatch(patch: Uint8Array): void {
  if (patch.length < PATCH) throw new IdcError(`A patch needs ${PATCH} bytes (50x50x3); got ${patch.length}.`, 'Pass one 50x50 RGB patch.', 'BAD_ARGUMENT');
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new IdcError(`Image size ${size} is not a whole number in 1..4096.`, 'Use e.g. 200.', 'BAD_ARGUMENT');
}

const rawPng = (rgb: Uint8Array, size: number) => encodeRgbPng(rgb, size, size);

/** Nearest-neighbour upscale of one patch to size×size RGB. */
export function patchRgb(patch: Uint8Array, size: number): Buffer {
  checkPatch(patch);
  checkSize(size);
  const out = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    const row = Math.floor((y * SIDE) / size) * SIDE;
    for (let x = 0; x < size; x++) {
      const s = (row + Math.floor((x * SIDE) / size)) * 3, d = (y * size + x) * 3;
      out[d] = patch[s]; out[d + 1] = patch[s + 1]; out[d + 2] = patch[s + 2];
    }
  }
  return out;
}

/** A patch thumbnail as PNG, upscaled nearest-neighbour (pixels stay crisp). */
export function patchPng(patch: Uint8Array, size = 200): Promise<Buffer> {
  return rawPng(patchRgb(patch, size), size);
}

/**
 * The patch (nearest upscale) with the map in viridis on top, each pixel blended by
 * alpha × map value, so tissue where the map is 0 shows unchanged. The map is sampled bilinearly.
 */
export function gradCamOverlayRgb(patch: Uint8Array, map: Float32Array, opts: { size?: number; alpha?: number } = {}): Buffer {
  const size = opts.size ?? 200;
  const alpha = opts.alpha ?? 0.6;
  if (map.length < SIDE * SIDE) throw new IdcError(`A Grad-CAM map needs 2500 values (50x50); got ${map.length}.`, 'Pass a map from gradCam().', 'BAD_ARGUMENT');
  if (!(alpha >= 0 && alpha <= 1)) throw new IdcError(`Overlay alpha ${alpha} is outside [0, 1].`, 'Use e.g. 0.6.', 'BAD_ARGUMENT');
  const out = patchRgb(patch, size);
  // Per-axis sample positions and weights, shared by rows and columns.
  const i0 = new Int32Array(size), i1 = new Int32Array(size), fr = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const c = Math.min(SIDE - 1, Math.max(0, ((i + 0.5) * SIDE) / size - 0.5));
    i0[i] = Math.floor(c); i1[i] = Math.min(SIDE - 1, i0[i] + 1); fr[i] = c - i0[i];
  }
  for (let y = 0; y < size; y++) {
    const r0 = i0[y] * SIDE, r1 = i1[y] * SIDE, fy = fr[y];
    for (let x = 0; x < size; x++) {
      const fx = fr[x];
      const top = map[r0 + i0[x]] * (1 - fx) + map[r0 + i1[x]] * fx;
      const bottom = map[r1 + i0[x]] * (1 - fx) + map[r1 + i1[x]] * fx;
      const v = top * (1 - fy) + bottom * fy;
      const w = v > 0 ? alpha * Math.min(1, v) : 0;
      if (w === 0) continue;
      const c = lutIndex(v) * 3, d = (y * size + x) * 3;
      for (let k = 0; k < 3; k++) out[d + k] = Math.round(out[d + k] * (1 - w) + VIRIDIS[c + k] * w);
    }
  }
  return out;
}

/** PNG of gradCamOverlayRgb: size×size (default 200), alpha default 0.6. */
export function gradCamOverlayPng(patch: Uint8Array, map: Float32Array, opts: { size?: number; alpha?: number } = {}): Promise<Buffer> {
  const size = opts.size ?? 200;
  return rawPng(gradCamOverlayRgb(patch, map, opts), size);
}
