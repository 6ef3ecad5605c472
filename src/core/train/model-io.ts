import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { existsSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep, win32 } from 'node:path';
import { IdcError } from '../errors';
import { mkdirpOrExplain, writeFileAtomic } from '../fsutil';

/**
 * Saves in the TF.js layers format (model.json + weights.bin) that tf.loadLayersModel reads. The
 * folder is written beside its place and renamed in: a kill mid-save leaves the old folder or none,
 * never a model.json without its weights.
 */
export async function saveModel(model: tfl.LayersModel, target: string): Promise<void> {
  const dir = `${target}.tmp-${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirpOrExplain(dir);
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    await writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(weightData));
    const json = {
      format: 'layers-model', generatedBy: 'IDC Inspector', convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) renameSync(target, old);
  renameSync(dir, target);
  rmSync(old, { recursive: true, force: true });
}

const MODEL_HINT = 'Point at a TF.js layers model folder (model.json and the weight files it lists), as written by tfjs or tensorflowjs_converter --output_format=tfjs_layers_model.';

/** Bytes per value of each weight dtype (quantized weights are stored as their quantization dtype). */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Loads a TF.js layers model from a folder (or a model.json path), reading every weights shard listed.
 * The folder is untrusted input: a shard path that leaves it (absolute, `..`, a symlink out) is refused
 * before anything is read, and sizes are checked against the weight specs before tfjs sees them.
 */
export async function loadModel(path: string): Promise<tfl.LayersModel> {
  const file = path.endsWith('.json') ? path : join(path, 'model.json');
  const bad = (what: string, hint = MODEL_HINT) => new IdcError(`${file}: ${what}`, hint, 'BAD_MODEL_FILE');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new IdcError(`Cannot read the model at ${file}: ${(e as Error).message}`, MODEL_HINT, 'BAD_MODEL_FILE');
  }
  if (!isObject(json) || !isObject(json.modelTopology) || !Array.isArray(json.weightsManifest)) {
    throw new IdcError(`${file} is not a TF.js layers model (no modelTopology/weightsManifest).`, 'Convert the model with tensorflowjs_converter --output_format=tfjs_layers_model.', 'BAD_MODEL_FILE');
  }
  let dir: string;
  try {
    dir = realpathSync(dirname(resolve(file)));
  } catch (e) {
    throw bad(`cannot resolve its folder: ${(e as Error).message}`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: { path: string; real: string; size: number }[] = [];
  let need = 0;
  for (const [g, group] of json.weightsManifest.entries()) {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw bad(`weightsManifest[${g}] needs "paths" and "weights" lists.`);
    for (const spec of group.weights as unknown[]) {
      need += specBytes(spec, bad);
      specs.push(spec as tf.io.WeightsManifestEntry);
    }
    for (const p of group.paths as unknown[]) shards.push(shardFile(dir, p, bad));
  }
  const have = shards.reduce((s, b) => s + b.size, 0);
  if (have < need) {
    throw bad(`its weight files (${shards.map((s) => s.path).join(', ') || 'none'}) hold ${have} bytes, but the weights it lists need ${need} bytes.`,
      'The weights file is truncated or belongs to another model: copy the model folder again, or re-export the model.');
  }
  const weightData = new Uint8Array(have);
  let off = 0;
  for (const s of shards) {
    let b: Buffer;
    try { b = readFileSync(s.real); } catch (e) { throw bad(`cannot read ${s.path}: ${(e as Error).message}`); }
    if (off + b.byteLength > have) throw bad(`${s.path} changed while it was read.`, 'Load the model again once nothing is writing it.');
    weightData.set(b, off);
    off += b.byteLength;
  }
  try {
    return await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData: weightData.buffer }));
  } catch (e) {
    // Whatever tfjs cannot build from this file (unknown layer class, a malformed layer, weights of
    // another shape) is a problem of the file, not of this program.
    const message = String((e as Error)?.message ?? e).split('\n')[0];
    throw bad(`cannot be built as a TF.js layers model: ${message}`, 'Use a model saved by TF.js (or converted with tensorflowjs_converter) whose layers are built into TF.js; custom layers are not supported.');
  }
}

/** Bytes one weight spec takes in the weight files; a spec tfjs would misread is refused. */
function specBytes(spec: unknown, bad: (what: string) => IdcError): number {
  if (!isObject(spec) || typeof spec.name !== 'string') throw bad('a weightsManifest weight has no name.');
  const shape = spec.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`weight ${spec.name} has an invalid shape ${JSON.stringify(shape)}.`);
  let per = DTYPE_BYTES[spec.dtype as string];
  if (per === undefined) throw bad(`weight ${spec.name} has unsupported dtype ${JSON.stringify(spec.dtype)}.`);
  if (spec.quantization !== undefined) {
    const q = isObject(spec.quantization) ? QUANTIZED_BYTES[spec.quantization.dtype as string] : undefined;
    if (q === undefined) throw bad(`weight ${spec.name} has unsupported quantization ${JSON.stringify(spec.quantization)}.`);
    per = q;
  }
  return (shape as number[]).reduce((a, b) => a * b, 1) * per;
}

/** A weights shard inside the model folder `dir` (a real path): its real path and size. */
function shardFile(dir: string, p: unknown, bad: (what: string, hint?: string) => IdcError): { path: string; real: string; size: number } {
  if (typeof p !== 'string' || p === '' || p.includes('\0')) throw bad(`weightsManifest lists an invalid weights path ${JSON.stringify(p)}.`);
  const outside = () => bad(`weights path "${p}" leaves the model folder ${dir}.`, 'A model folder must hold its own weight files: list them by their names inside it.');
  if (isAbsolute(p) || win32.isAbsolute(p) || p.split(/[\\/]/).includes('..')) throw outside();
  let real: string;
  try {
    real = realpathSync(join(dir, p));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw bad(`its weights file ${p} is missing (${join(dir, p)}).`, 'Copy the whole model folder (model.json with its weight files).');
    throw bad(`cannot read its weights file ${p}: ${(e as Error).message}`);
  }
  const rel = relative(dir, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw bad(`weights path "${p}" is a link to ${real}, outside the model folder ${dir}.`, 'A model folder must hold its own weight files: copy them into it instead of linking.');
  }
  const st = statSync(real);
  if (!st.isFile()) throw bad(`its weights path ${p} is not a file.`, 'List the weight files (not folders) in weightsManifest.');
  return { path: p, real, size: st.size };
}
