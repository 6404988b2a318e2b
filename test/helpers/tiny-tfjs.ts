/**
 * A tiny tfjs LayersModel saved as model.json + weights.bin, with seeded weights: conv(4) -> conv(6)
 * -> [flatten -> dense(hidden)] or GAP -> dense(3, softmax). Shared by the reliability tests and the
 * reliability script. tfjs is imported when a model is made, so importing this module loads nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A small seeded linear congruential generator in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

export interface TinyTfjsOptions {
  /** units of a dense layer after flattening (0: global average pooling instead) */
  hidden?: number;
  /** the second conv's bias (default: zeros) */
  conv2Bias?: number;
  /** written as gradcam.json beside the model */
  sidecar?: Record<string, unknown>;
}

/** Writes the model into `dir` and returns the path of its model.json. */
export async function saveTinyTfjsModel(dir: string, size: number, options: TinyTfjsOptions = {}): Promise<string> {
  const tf = await import('@tensorflow/tfjs');
  const hidden = options.hidden ?? 0;
  fs.mkdirSync(dir, { recursive: true });
  const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed });
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ name: 'conv1', inputShape: [size, size, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }));
  model.add(tf.layers.conv2d({
    name: 'conv2', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2),
    ...(options.conv2Bias !== undefined ? { biasInitializer: tf.initializers.constant({ value: options.conv2Bias }) } : {}),
  }));
  if (hidden > 0) {
    model.add(tf.layers.flatten({ name: 'flat' }));
    model.add(tf.layers.dense({ name: 'hidden', units: hidden, activation: 'relu', kernelInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: 4 }) }));
  } else {
    model.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  }
  model.add(tf.layers.dense({ name: 'logits', units: 3, activation: 'softmax', kernelInitializer: init(3) }));
  const file = path.join(dir, 'model.json');
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
      fs.writeFileSync(file, JSON.stringify({ format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  if (options.sidecar) fs.writeFileSync(path.join(dir, 'gradcam.json'), JSON.stringify(options.sidecar));
  return file;
}
