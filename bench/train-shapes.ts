/**
 * Trains the small CNN behind test/tfjs.shapes.test.ts (class discrimination: the paper's
 * cat-and-dog figure made measurable) and writes it to test/fixtures/shapes-cnn/ as a tfjs
 * LayersModel (model.json + weights.bin).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/train-shapes.js [--steps 2500] [--seed 7] [--batch 32] [--out DIR]
 *
 * Data: test/helpers/shapes-data.ts, fresh seeded images every step (no epochs, no overfitting):
 * half single-object images with a one-hot target, half two-object composites with the target
 * 0.5/0.5 on their two classes, all under softmax cross-entropy. The composites teach the network
 * that two shapes may share an image without either one hiding the other, which is what the
 * Grad-CAM maps of the test explain; the single images keep it a plain classifier (the test
 * asserts its accuracy on them).
 *
 * Engine: the tfjs wasm backend, with three gradient kernels registered here: Conv2DBackpropFilter
 * (wasm lacks it; the cpu backend's takes ~4 s for one small batch): im2col plus wasm's matrix
 * product; Conv2DBackpropInput for stride-1 'same' convolutions as a convolution with the rotated
 * filter (wasm's own is several times slower); MaxPoolGrad (wasm's routes gradients wrongly in
 * tfjs 4.22, see lib/tfjs/engine.ts). About 0.3 s per step of 32 images on one core. Everything
 * is seeded (data, initializers, batch order), so a run on the same machine repeats exactly;
 * floating-point training is not guaranteed to be bit-identical across machines, which is why the
 * test uses the committed weights rather than retraining.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { IMAGE_SIZE, NUM_CLASSES, makeComposites, makeSingles, toBatch, type ShapeImage } from '../test/helpers/shapes-data';

// ---------------------------------------------------------------------------------------------
// gradient kernels for the wasm backend (NHWC, float32)

interface TensorInfoLike {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}
interface WasmBackendLike {
  typedArrayFromHeap(info: TensorInfoLike): Float32Array;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): TensorInfoLike;
}

interface WasmBackendFull extends WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
}

function wasmKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`train-shapes: the wasm backend has no ${name} kernel`);
  return k.kernelFunc;
}

/**
 * dW[kh,kw,ci,co] = sum over b,oy,ox of x[b, oy*sh+kh-top, ox*sw+kw-left, ci] * dy[b,oy,ox,co]:
 * im2col in TypeScript, then one matrix product patches^T . dy on wasm's BatchMatMul (XNNPACK).
 */
const conv2dBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as unknown as { x: TensorInfoLike; dy: TensorInfoLike };
  const a = attrs as unknown as { strides: number | [number, number]; pad: 'same' | 'valid' | number; dataFormat: string; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
  if (a.dataFormat !== 'NHWC') throw new Error('train-shapes: Conv2DBackpropFilter supports NHWC only');
  const wasm = backend as unknown as WasmBackendFull;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const xv = wasm.typedArrayFromHeap(x);
  const rows = batchSize * outHeight * outWidth;
  const cols = filterHeight * filterWidth * inChannels;
  // patches transposed, [cols, rows]: wasm's BatchMatMul is fast only without transposes
  const patches = new Float32Array(rows * cols);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const row = (b * outHeight + oy) * outWidth + ox;
        for (let kh = 0; kh < filterHeight; kh++) {
          const iy = oy * strideHeight + kh - top;
          if (iy < 0 || iy >= inHeight) continue;
          for (let kw = 0; kw < filterWidth; kw++) {
            const ix = ox * strideWidth + kw - left;
            if (ix < 0 || ix >= inWidth) continue;
            const src = ((b * inHeight + iy) * inWidth + ix) * inChannels;
            const col = (kh * filterWidth + kw) * inChannels;
            for (let c = 0; c < inChannels; c++) patches[(col + c) * rows + row] = xv[src + c];
          }
        }
      }
    }
  }
  const p = wasm.makeOutput([1, cols, rows], 'float32', undefined, patches);
  try {
    const out = wasmKernel('BatchMatMul')({
      inputs: { a: p, b: { dataId: dy.dataId, shape: [1, rows, outChannels], dtype: 'float32' } } as unknown as tf.NamedTensorInfoMap,
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as unknown as TensorInfoLike;
    return { dataId: out.dataId, shape: a.filterShape, dtype: 'float32' } as unknown as tf.TensorInfo;
  } finally {
    wasm.disposeData(p.dataId);
  }
};

let wasmConv2dBackpropInput: tf.KernelFunc | undefined;

/**
 * dx for a stride-1 'same' convolution with an odd square kernel is the 'same' convolution of dy
 * with the filter rotated by 180 degrees and its channel axes swapped; wasm's Conv2D (XNNPACK) runs
 * it several times faster than wasm's own Conv2DBackpropInput, which serves every other case.
 */
const conv2dBackpropInput: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as unknown as { dy: TensorInfoLike; filter: TensorInfoLike };
  const a = attrs as unknown as { strides: number | [number, number]; pad: unknown; dataFormat: string; dimRoundingMode?: string };
  const [kh, kw, ci, co] = filter.shape;
  const stride1 = a.strides === 1 || (Array.isArray(a.strides) && a.strides[0] === 1 && a.strides[1] === 1);
  if (!stride1 || a.pad !== 'same' || a.dataFormat !== 'NHWC' || kh !== kw || kh % 2 !== 1) return wasmConv2dBackpropInput!(args);
  const wasm = backend as unknown as WasmBackendFull;
  const w = wasm.typedArrayFromHeap(filter);
  const flipped = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const src = (y * kw + x) * ci * co;
      const dst = ((kh - 1 - y) * kw + (kw - 1 - x)) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) flipped[dst + o * ci + i] = w[src + i * co + o];
    }
  }
  const f = wasm.makeOutput([kh, kw, co, ci], 'float32', undefined, flipped);
  try {
    return wasmKernel('Conv2D')({
      inputs: { x: dy, filter: f } as unknown as tf.NamedTensorInfoMap,
      backend,
      attrs: { strides: 1, pad: 'same', dilations: 1, dataFormat: 'NHWC' },
    });
  } finally {
    wasm.disposeData(f.dataId);
  }
};

/** Max-pool backward: each window's gradient goes to its first maximal element (row-major), as on the cpu backend. */
const maxPoolGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as unknown as { dy: TensorInfoLike; input: TensorInfoLike };
  const a = attrs as unknown as { filterSize: number | [number, number]; strides: number | [number, number]; pad: 'same' | 'valid' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
  const wasm = backend as unknown as WasmBackendLike;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const xv = wasm.typedArrayFromHeap(input);
  const dyv = wasm.typedArrayFromHeap(dy);
  const dx = new Float32Array(xv.length);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let c = 0; c < inChannels; c++) {
          let best = -Infinity;
          let bestAt = -1;
          for (let kh = 0; kh < filterHeight; kh++) {
            const iy = oy * strideHeight + kh - top;
            if (iy < 0 || iy >= inHeight) continue;
            for (let kw = 0; kw < filterWidth; kw++) {
              const ix = ox * strideWidth + kw - left;
              if (ix < 0 || ix >= inWidth) continue;
              const at = ((b * inHeight + iy) * inWidth + ix) * inChannels + c;
              if (xv[at] > best) {
                best = xv[at];
                bestAt = at;
              }
            }
          }
          if (bestAt >= 0) dx[bestAt] += dyv[((b * outHeight + oy) * outWidth + ox) * inChannels + c];
        }
      }
    }
  }
  return wasm.makeOutput(input.shape, 'float32', undefined, dx) as unknown as tf.TensorInfo;
};

/** Makes the wasm backend current, with the two gradient kernels above registered. */
export async function useWasmForTraining(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep);
  wasmConv2dBackpropInput = wasmKernel('Conv2DBackpropInput');
  for (const [kernelName, kernelFunc] of [
    ['Conv2DBackpropFilter', conv2dBackpropFilter],
    ['Conv2DBackpropInput', conv2dBackpropInput],
    ['MaxPoolGrad', maxPoolGrad],
  ] as const) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialize');
  await tf.ready();
}

// ---------------------------------------------------------------------------------------------
// model

/**
 * The network: 3x3 conv+ReLU layers of 16, 32, 64, 64 channels with 2x2 max pools after the first
 * two, global average pooling, linear logits. The last two convolutions run at 12x12; the second
 * of them widens the receptive field to 26 px, so a unit centred on an object (diameter 10-18 px)
 * sees all of it, which is what lets the class evidence peak on the object rather than beside it.
 */
export function buildShapesModel(seed: number): tf.LayersModel {
  let s = seed;
  const conv = (filters: number, name: string, inputShape?: number[]) =>
    tf.layers.conv2d({
      name,
      inputShape,
      filters,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: s++ }),
      biasInitializer: 'zeros',
    });
  const model = tf.sequential({ name: 'shapes_cnn' });
  model.add(conv(16, 'conv1', [IMAGE_SIZE, IMAGE_SIZE, 3]));
  model.add(tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }));
  model.add(conv(32, 'conv2'));
  model.add(tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }));
  model.add(conv(64, 'conv3'));
  model.add(conv(64, 'conv4'));
  model.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  model.add(tf.layers.dense({ name: 'logits', units: NUM_CLASSES, kernelInitializer: tf.initializers.glorotUniform({ seed: s++ }) }));
  return model;
}

// ---------------------------------------------------------------------------------------------
// saving without tfjs-node: model.json + weights.bin

export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const json = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weightData));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// training

interface Options {
  steps: number;
  batch: number;
  seed: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { steps: 2500, batch: 32, seed: 7, out: path.join(__dirname, '..', '..', 'test', 'fixtures', 'shapes-cnn') };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--steps') opts.steps = Number(v);
    else if (argv[i] === '--batch') opts.batch = Number(v);
    else if (argv[i] === '--seed') opts.seed = Number(v);
    else if (argv[i] === '--out') opts.out = path.resolve(v);
    else continue;
    i++;
  }
  return opts;
}

/** targets: one-hot for single images, 0.5/0.5 for composites */
function targetsOf(images: readonly ShapeImage[]): Float32Array {
  const y = new Float32Array(images.length * NUM_CLASSES);
  images.forEach((im, i) => {
    for (const o of im.objects) y[i * NUM_CLASSES + o.cls] += 1 / im.objects.length;
  });
  return y;
}

function logitsOf(model: tf.LayersModel, images: readonly ShapeImage[]): Float32Array {
  const out = new Float32Array(images.length * NUM_CLASSES);
  for (let i = 0; i < images.length; i += 100) {
    const part = images.slice(i, i + 100);
    const b = toBatch(part);
    const logits = tf.tidy(() => model.predict(tf.tensor4d(b.data, b.shape)) as tf.Tensor);
    out.set(logits.dataSync() as Float32Array, i * NUM_CLASSES);
    logits.dispose();
  }
  return out;
}

/** accuracy on single images; top-2 = both classes for composites */
export function evaluate(model: tf.LayersModel, singles: readonly ShapeImage[], composites: readonly ShapeImage[]): { single: number; compositeTop2: number } {
  const ls = logitsOf(model, singles);
  let ok = 0;
  singles.forEach((im, i) => {
    const row = Array.from(ls.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
    if (row.indexOf(Math.max(...row)) === im.objects[0].cls) ok++;
  });
  const lc = logitsOf(model, composites);
  let ok2 = 0;
  composites.forEach((im, i) => {
    const row = Array.from(lc.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
    const order = row.map((v, k) => [v, k]).sort((p, q) => q[0] - p[0]).map((p) => p[1]);
    const top2 = new Set(order.slice(0, 2));
    if (im.objects.every((o) => top2.has(o.cls))) ok2++;
  });
  return { single: ok / singles.length, compositeTop2: ok2 / composites.length };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  await useWasmForTraining();
  const model = buildShapesModel(opts.seed);
  model.summary(undefined, undefined, (line) => console.log(line));
  const optimizer = tf.train.adam(2e-3);
  const valSingles = makeSingles(opts.seed + 1, 500);
  const valComposites = makeComposites(opts.seed + 2, 300);
  const t0 = Date.now();
  const half = opts.batch / 2;
  let avg = 0;
  for (let step = 0; step < opts.steps; step++) {
    // step decay; Adam reads its (protected) learningRate on every update
    if (step === Math.floor(opts.steps * 0.7)) (optimizer as unknown as { learningRate: number }).learningRate = 5e-4;
    if (step === Math.floor(opts.steps * 0.9)) (optimizer as unknown as { learningRate: number }).learningRate = 1.5e-4;
    // a distinct seed per step and kind: the data stream depends only on opts.seed
    const images = makeSingles(opts.seed * 7919 + 2 * step + 11, half).concat(makeComposites(opts.seed * 7919 + 2 * step + 12, half));
    const b = toBatch(images);
    const yTrue = targetsOf(images);
    const loss = tf.tidy(() => {
      const x = tf.tensor4d(b.data, b.shape);
      const y = tf.tensor2d(yTrue, [images.length, NUM_CLASSES]);
      return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor2D) as tf.Scalar, true) as tf.Scalar;
    });
    const l = (await loss.data())[0];
    loss.dispose();
    avg = step === 0 ? l : 0.95 * avg + 0.05 * l;
    if ((step + 1) % 50 === 0 || step === opts.steps - 1) {
      const msg = `step ${step + 1}/${opts.steps}  loss ${avg.toFixed(4)}  ${((Date.now() - t0) / 1000).toFixed(0)} s`;
      if ((step + 1) % 250 === 0 || step === opts.steps - 1) {
        const acc = evaluate(model, valSingles, valComposites);
        console.log(`${msg}  val single acc ${(acc.single * 100).toFixed(1)}%  composite top-2 ${(acc.compositeTop2 * 100).toFixed(1)}%`);
      } else console.log(msg);
    }
  }
  const acc = evaluate(model, valSingles, valComposites);
  console.log(`final: single-object accuracy ${(acc.single * 100).toFixed(2)}% (500 images), composite top-2 ${(acc.compositeTop2 * 100).toFixed(2)}% (300 images), ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await saveModel(model, opts.out);
  console.log(`saved ${opts.out}/model.json and weights.bin`);
  optimizer.dispose();
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
