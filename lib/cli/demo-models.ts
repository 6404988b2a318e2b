/**
 * The pretrained models of the demo, taken from npm packages (nothing is downloaded at run time):
 *  - nsfwjs@4.4.0's MobileNetV2: a tfjs LayersModel shipped as two UMD scripts, `model.min.js`
 *    (require() gives the model.json object) and `group1-shard1of1.min.js` (require() gives the
 *    base64 string of the weights). 224x224 RGB, NHWC, pixels / 255 (nsfwjs core.js:
 *    `img.toFloat().div(255)`), classes Drawing, Hentai, Neutral, Porn, Sexy (nsfw_classes.js).
 *  - @vladmandic/human's emotion model (oarriaga/face_classification): a tfjs GraphModel,
 *    64x64 grey NHWC; human feeds (grey - 0.5) * 2 with grey = 0.2989 R + 0.587 G + 0.114 B in [0,1],
 *    and names the 7 outputs angry, disgust, fear, happy, sad, surprise, neutral (its emotion.ts,
 *    for a 1-channel model).
 * Each is written to a folder as model.json + weights + a gradcam.json sidecar, so that the files
 * the demo writes can be re-run with `gradcam explain --model <folder>/model.json`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GradcamError } from '../errors';
import { writeFileAtomicSync } from '../io/atomic';

export interface DemoModel {
  name: string;
  /** model.json written by materialize() */
  modelJson: string;
  labels: string[];
}

export const NSFW_LABELS = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
export const EMOTION_LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

/** The packages `gradcam demo` needs beyond gradcam-node (devDependencies of the repository). */
export const DEMO_PACKAGES = ['nsfwjs@4.4.0', '@vladmandic/human', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];

/**
 * Throws one EDEMO line naming every missing package and the command that installs them (in a
 * clone of the repository they are devDependencies; in a project that installed gradcam-node, not).
 */
export function checkDemoPackages(emotion = true): void {
  const needed = DEMO_PACKAGES.filter((p) => emotion || !p.startsWith('@vladmandic/'));
  const missing = needed.filter((spec) => {
    try {
      require.resolve(spec.replace(/(.)@.*$/, '$1'));
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) {
    throw new GradcamError(
      `the demo needs the npm package${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (not installed): run \`npm install ${missing.join(' ')}\``,
      'EDEMO',
    );
  }
}

function packageDir(pkg: string, entry: string): string {
  try {
    return path.dirname(require.resolve(entry));
  } catch (e) {
    throw new GradcamError(`the demo needs the npm package ${pkg}: run \`npm install ${pkg}\` (${(e as Error).message.split('\n')[0]})`, 'EDEMO');
  }
}

function writeModel(dir: string, topology: unknown, weightsManifest: Array<{ paths: string[]; weights: unknown[] }>, shards: Buffer[], extra: Record<string, unknown>, sidecar: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  const paths = shards.map((_, i) => `weights${shards.length > 1 ? i + 1 : ''}.bin`);
  shards.forEach((b, i) => writeFileAtomicSync(path.join(dir, paths[i]), b));
  const manifest = [{ paths, weights: weightsManifest.flatMap((g) => g.weights) }];
  const file = path.join(dir, 'model.json');
  writeFileAtomicSync(file, JSON.stringify({ ...extra, modelTopology: topology, weightsManifest: manifest }));
  writeFileAtomicSync(path.join(dir, 'gradcam.json'), JSON.stringify(sidecar, null, 2) + '\n');
  return file;
}

/** nsfwjs's MobileNetV2 as <dir>/model.json + weights.bin + gradcam.json. */
export function materializeNsfwMobileNetV2(dir: string): DemoModel {
  const base = path.join(packageDir('nsfwjs@4.4.0', 'nsfwjs'), '..', 'models', 'mobilenet_v2');
  const modelFile = path.join(base, 'model.min.js');
  const shardFile = path.join(base, 'group1-shard1of1.min.js');
  if (!fs.existsSync(modelFile) || !fs.existsSync(shardFile)) {
    throw new GradcamError(`nsfwjs's MobileNetV2 files are missing under ${base}: reinstall nsfwjs@4.4.0`, 'EDEMO');
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const json = require(modelFile) as { modelTopology: unknown; weightsManifest: Array<{ paths: string[]; weights: unknown[] }>; format?: string };
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const shard = require(shardFile) as string | Record<string, string>;
  const buffers = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const b64 = typeof shard === 'string' ? shard : shard[p];
      if (typeof b64 !== 'string') throw new GradcamError(`nsfwjs weight shard '${p}' not found in ${shardFile}`, 'EDEMO');
      return Buffer.from(b64, 'base64');
    }),
  );
  const file = writeModel(
    dir,
    json.modelTopology,
    json.weightsManifest,
    [Buffer.concat(buffers)],
    { format: 'layers-model', generatedBy: 'nsfwjs 4.4.0 (MobileNetV2)', convertedBy: 'gradcam-node demo' },
    { size: [224, 224], mean: [0, 0, 0], std: [1, 1, 1], layout: 'nhwc', labels: NSFW_LABELS, source: 'nsfwjs@4.4.0 models/mobilenet_v2; input = pixels / 255' },
  );
  return { name: 'nsfwjs MobileNetV2', modelJson: file, labels: NSFW_LABELS };
}

/** @vladmandic/human's emotion GraphModel as <dir>/model.json + weights.bin + gradcam.json. */
export function materializeHumanEmotion(dir: string): DemoModel {
  const base = path.join(packageDir('@vladmandic/human', '@vladmandic/human'), '..', 'models');
  const jsonFile = path.join(base, 'emotion.json');
  if (!fs.existsSync(jsonFile)) throw new GradcamError(`@vladmandic/human's models/emotion.json is missing under ${base}`, 'EDEMO');
  const json = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Record<string, unknown> & { modelTopology: unknown; weightsManifest: Array<{ paths: string[]; weights: unknown[] }> };
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(base, p))));
  const { modelTopology, weightsManifest, ...extra } = json;
  const file = writeModel(
    dir,
    modelTopology,
    weightsManifest,
    [Buffer.concat(shards)],
    extra,
    { size: [64, 64], channels: 1, mean: [0.5], std: [0.5], layout: 'nhwc', labels: EMOTION_LABELS, source: '@vladmandic/human models/emotion.json; input = (grey - 0.5) * 2' },
  );
  return { name: 'human emotion', modelJson: file, labels: EMOTION_LABELS };
}
