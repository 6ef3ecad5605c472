import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError } from '../errors';
import { writeFileAtomic } from '../fsutil';

/** Saves in the TF.js layers format (model.json + weights.bin) that tf.loadLayersModel reads. */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
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
}

/** Loads a TF.js layers model from a folder (or a model.json path), reading every weights shard listed. */
export async function loadModel(path: string): Promise<tfl.LayersModel> {
  const file = path.endsWith('.json') ? path : join(path, 'model.json');
  const dir = file.slice(0, file.lastIndexOf('/') + 1) || './';
  let json: { modelTopology?: unknown; weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new IdcError(`Cannot read the model at ${file}: ${(e as Error).message}`, 'Point at a TF.js layers model folder (model.json + weights).', 'BAD_MODEL_FILE');
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new IdcError(`${file} is not a TF.js layers model (no modelTopology/weightsManifest).`, 'Convert the model with tensorflowjs_converter --output_format=tfjs_layers_model.', 'BAD_MODEL_FILE');
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(readFileSync(join(dir, p)));
  }
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) { weightData.set(b, off); off += b.byteLength; }
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData: weightData.buffer }));
}
