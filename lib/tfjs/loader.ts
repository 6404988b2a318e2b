/**
 * Loading tfjs models from disk without tfjs-node: a model.json (Layers or Graph format) with its
 * binary weight shards, or the UMD-wrapped `.js` model files some npm packages ship (nsfwjs:
 * `model.min.js` gives the model.json object, each `groupN-shard*.min.js` a base64 weight shard).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { GradcamError, invalidType, rangeErrorOf } from '../errors';

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
}

function readShard(file: string): Uint8Array {
  if (fs.existsSync(file)) return new Uint8Array(fs.readFileSync(file));
  for (const alt of [`${file}.min.js`, `${file}.js`]) {
    if (fs.existsSync(alt)) {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const b64 = require(path.resolve(alt)) as unknown;
      if (typeof b64 !== 'string') throw new GradcamError(`weight shard ${alt} does not export a base64 string`, 'EMODEL');
      return new Uint8Array(Buffer.from(b64, 'base64'));
    }
  }
  throw new GradcamError(`weight file ${file} not found`, 'EMODEL');
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2, int8: 1, int16: 2, uint16: 2, complex64: 8 };

/** Bytes of one weight in the shards (NaN when it cannot be told: quantized or string weights). */
function weightBytes(w: tf.io.WeightsManifestEntry): number {
  const count = (w.shape ?? []).reduce((a, b) => a * b, 1);
  const q = (w as { quantization?: { dtype?: string } }).quantization;
  const dtype = q?.dtype ?? w.dtype;
  const per = DTYPE_BYTES[dtype as string];
  return per === undefined ? NaN : count * per;
}

function isGraph(json: ModelJson): boolean {
  if (json.format === 'graph-model') return true;
  if (json.format === 'layers-model') return false;
  const topo = json.modelTopology as { node?: unknown; model_config?: unknown; class_name?: unknown } | undefined;
  return !!topo && Array.isArray(topo.node);
}

/** Model artifacts (topology + concatenated weights) of a model.json or UMD .js model on disk. */
export function readModelArtifacts(file: string): { artifacts: tf.io.ModelArtifacts; graph: boolean } {
  let json: ModelJson;
  if (file.endsWith('.js')) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    json = require(path.resolve(file)) as ModelJson;
  } else {
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelJson;
    } catch (e) {
      // a truncated or corrupt download: JSON.parse's message alone does not say which file
      throw new GradcamError(`cannot parse the tfjs model ${file}: ${(e as Error).message.split('\n')[0]}`, 'EBADMODEL');
    }
  }
  if (!json || typeof json !== 'object' || !json.modelTopology) {
    throw new GradcamError(`${file} is not a TensorFlow.js model.json (no modelTopology)`, 'EMODEL');
  }
  if (json.weightsManifest !== undefined && (!Array.isArray(json.weightsManifest)
    || json.weightsManifest.some((g) => !g || !Array.isArray(g.paths) || !Array.isArray(g.weights)))) {
    throw new GradcamError(`${file}: weightsManifest must be a list of { paths, weights } groups`, 'EBADMODEL');
  }
  const dir = path.dirname(file);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? []) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) chunks.push(readShard(path.join(dir, p)));
  }
  const total = chunks.reduce((s, c) => s + c.byteLength, 0);
  const expected = weightSpecs.reduce((s, w) => s + weightBytes(w), 0);
  if (Number.isFinite(expected) && total !== expected) {
    // tfjs would fail later with a message about a tensor's size, naming neither file
    const shards = (json.weightsManifest ?? []).flatMap((g) => g.paths).join(', ');
    throw new GradcamError(`the weights of ${file} (${shards}) hold ${total} bytes, the model declares ${expected}: truncated or wrong weight files`, 'EBADMODEL');
  }
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    weightData.set(c, offset);
    offset += c.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs,
    weightData: weightData.buffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy as string | undefined,
    signature: json.signature as tf.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'],
    modelInitializer: json.modelInitializer as tf.io.ModelArtifacts['modelInitializer'],
  };
  return { artifacts, graph: isGraph(json) };
}

/**
 * Loads a tfjs model: a path to a model.json (or a folder holding one, or a UMD `.js` model file),
 * or an http(s) URL of a model.json. Returns a LayersModel or a GraphModel by the file's format.
 */
export async function loadTfjsModel(pathOrUrl: string): Promise<tf.LayersModel | tf.GraphModel> {
  if (typeof pathOrUrl !== 'string' || pathOrUrl.length === 0) throw invalidType('pathOrUrl', 'path or URL of a model.json', pathOrUrl);
  if (/^https?:\/\//i.test(pathOrUrl)) {
    const res = await fetch(pathOrUrl);
    if (!res.ok) throw new GradcamError(`cannot fetch ${pathOrUrl}: HTTP ${res.status}`, 'EMODEL');
    const json = (await res.json()) as ModelJson;
    return isGraph(json) ? tf.loadGraphModel(pathOrUrl) : tf.loadLayersModel(pathOrUrl);
  }
  let file = pathOrUrl.startsWith('file://') ? pathOrUrl.slice(7) : pathOrUrl;
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'model.json');
  if (!fs.existsSync(file)) throw Object.assign(new RangeError(`Expected an existing model.json for pathOrUrl but received '${pathOrUrl}'`), { code: 'ENOENT' });
  const { artifacts, graph } = readModelArtifacts(file);
  const handler: tf.io.IOHandler = { load: async () => artifacts };
  return graph ? tf.loadGraphModel(handler) : tf.loadLayersModel(handler);
}
