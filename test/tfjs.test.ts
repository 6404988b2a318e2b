/**
 * The tfjs adapter: engine selection, the gradient building blocks against tfjs's own gradients
 * and central finite differences, guided backprop against a hand-computed network, real models
 * shipped in npm packages (nsfwjs MobileNetV2 LayersModel, @vladmandic/human emotion GraphModel)
 * on the example photos, argument checks and tensor leaks.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { createTfjsExplainer, loadTfjsModel, selectTfjsEngine, WASM_MISSING_GRADIENT_KERNELS, type TfjsModelExplainer } from '../lib/tfjs';
import { ProgramSource } from '../lib/tfjs/explainer';
import { layersProgram } from '../lib/tfjs/layers-adapter';
import * as ops from '../lib/tfjs/ops';
import type { Explainer, ExplainResult } from '../lib/types';
import { repoRoot } from './helpers/reference-data';

const ROOT = repoRoot();
const IMAGES = ['chelsea.png', 'coffee.png', 'astronaut.png'].map((f) => path.join(ROOT, 'assets', 'images', f));
const NSFW = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2', 'model.min.js');
const EMOTION = path.join(ROOT, 'node_modules', '@vladmandic', 'human', 'models', 'emotion.json');

/** RGB images resized to size x size, [0,1], NHWC. */
async function rgbBatch(files: string[], size: number): Promise<Float32Array> {
  const out = new Float32Array(files.length * size * size * 3);
  for (let i = 0; i < files.length; i++) {
    const buf = await sharp(files[i]).resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    for (let j = 0; j < buf.length; j++) out[i * size * size * 3 + j] = buf[j] / 255;
  }
  return out;
}

/** human's emotion preprocessing: grey = rgb . [0.2989, 0.587, 0.114] in [0,1], then (grey - 0.5) * 2. */
async function greyBatch(files: string[], size: number): Promise<Float32Array> {
  const rgb = await rgbBatch(files, size);
  const out = new Float32Array(files.length * size * size);
  for (let p = 0; p < out.length; p++) out[p] = (rgb[3 * p] * 0.2989 + rgb[3 * p + 1] * 0.587 + rgb[3 * p + 2] * 0.114 - 0.5) * 2;
  return out;
}

function checkMaps(r: ExplainResult, H: number, W: number) {
  for (const e of r.explanations) {
    assert.ok(e.map, 'map present');
    assert.equal(e.map.length, H * W);
    let max = 0;
    for (const v of e.map) {
      assert.ok(Number.isFinite(v) && v >= 0 && v <= 1, `map value ${v} outside [0,1]`);
      max = Math.max(max, v);
    }
    assert.ok(max > 0.99, `normalized map reaches 1 (max ${max})`);
  }
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

async function expectNoLeak<T>(f: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  try {
    return await f();
  } finally {
    assert.equal(tf.memory().numTensors, before, 'tensor count changed');
  }
}

describe('tfjs adapter', function () {
  this.timeout(120000);

  describe('engine', () => {
    it('picks wasm (tfjs-node is not installed here) with the missing gradient kernels registered', async () => {
      let hasNode = true;
      try {
        require.resolve('@tensorflow/tfjs-node');
      } catch {
        hasNode = false;
      }
      const engine = await selectTfjsEngine();
      if (process.env.GRADCAM_TFJS_ENGINE) return; // overridden for this run
      assert.equal(engine, hasNode ? 'tfjs-node' : 'tfjs-wasm');
      if (!hasNode) {
        assert.equal(tf.getBackend(), 'wasm');
        for (const k of WASM_MISSING_GRADIENT_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), `${k} registered for wasm`);
      }
      assert.equal(await selectTfjsEngine('auto'), engine, 'chosen once');
      // an explicit choice is for that caller only: 'auto' still resolves to the automatic choice
      assert.equal(await selectTfjsEngine('cpu'), 'tfjs-cpu');
      assert.equal(tf.getBackend(), 'cpu');
      assert.equal(await selectTfjsEngine(), engine);
      assert.equal(tf.getBackend(), hasNode ? 'tensorflow' : 'wasm');
    });

    it('rejects an unknown engine naming the argument', async () => {
      await assert.rejects(selectTfjsEngine('gpu' as never), { name: 'RangeError', message: /for engine/ });
    });

    it("wasm's Identity shares buffers safely (clones outlive their source)", () => {
      if (tf.getBackend() !== 'wasm') return;
      const before = tf.memory().numTensors;
      const a = tf.tensor1d([1, 2, 3]);
      const b = tf.clone(a);
      a.dispose();
      assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3]);
      const c = tf.add(b, 1);
      b.dispose();
      assert.deepEqual(Array.from(c.dataSync()), [2, 3, 4]);
      c.dispose();
      assert.equal(tf.memory().numTensors, before);
    });

    it('the delegated wasm kernels agree with the cpu backend', async () => {
      if (tf.getBackend() !== 'wasm') return;
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor4d(Array.from({ length: 2 * 7 * 7 * 3 }, (_, i) => Math.sin(i)), [2, 7, 7, 3]);
          const f = tf.tensor4d(Array.from({ length: 3 * 3 * 3 * 2 }, (_, i) => Math.cos(i)), [3, 3, 3, 2]);
          const d = tf.tensor4d(Array.from({ length: 3 * 3 * 3 }, (_, i) => Math.cos(2 * i)), [3, 3, 3, 1]);
          const [dxd, dfd] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, d]);
          const df = tf.grad((b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, b as tf.Tensor4D, 1, 'valid'))))(f);
          const seg = tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([0, 2, 0, 1], 'int32'), 3);
          const mp = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 3, 2, 'same'), tf.range(1, 1 + 2 * 4 * 4 * 3).reshape([2, 4, 4, 3]))))(x);
          return [dxd, dfd, df, seg, mp].map((t) => Array.from(t.dataSync()));
        });
      const wasm = run();
      await selectTfjsEngine('cpu');
      const cpu = run();
      await selectTfjsEngine('wasm');
      for (let i = 0; i < wasm.length; i++) {
        for (let j = 0; j < wasm[i].length; j++) assert.ok(Math.abs(wasm[i][j] - cpu[i][j]) <= 1e-4 * (1 + Math.abs(cpu[i][j])), `kernel ${i} element ${j}`);
      }
    });
  });

  describe('gradient building blocks', () => {
    const cases: Array<{ k: number; s: number; pad: 'same' | 'valid'; H: number; W: number }> = [
      { k: 3, s: 1, pad: 'same', H: 7, W: 6 },
      { k: 3, s: 2, pad: 'same', H: 8, W: 9 },
      { k: 3, s: 2, pad: 'valid', H: 9, W: 8 },
      { k: 1, s: 1, pad: 'valid', H: 5, W: 5 },
      { k: 5, s: 3, pad: 'same', H: 11, W: 10 },
      { k: 1, s: 2, pad: 'same', H: 29, W: 28 },
      { k: 3, s: 2, pad: 'valid', H: 10, W: 11 },
    ];
    for (const [i, c] of cases.entries()) {
      // the odd cases run with tf.pad + 'valid' instead of explicit pads (the tfjs-node path)
      const explicitPads = i % 2 === 0;
      it(`conv and depthwise input gradients equal tfjs's (k${c.k} s${c.s} ${c.pad} ${c.H}x${c.W}, ${explicitPads ? 'explicit pads' : 'tf.pad'})`, () => {
        ops.setExplicitPadding(explicitPads);
        try {
          tf.tidy(() => {
            const x = tf.randomNormal([2, c.H, c.W, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
            const f = tf.randomNormal([c.k, c.k, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
            const d = tf.randomNormal([c.k, c.k, 3, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
            const pads = ops.windowPads(c.pad, c.H, c.W, c.k, c.k, c.s, c.s);
            const back = ops.backwardFilter(d, true);
            const w1 = tf.randomNormal(tf.conv2d(x, f, c.s, c.pad).shape, 0, 1, 'float32', 4);
            const w2 = tf.randomNormal(tf.depthwiseConv2d(x, d, c.s, c.pad).shape, 0, 1, 'float32', 5);
            const ours = tf.grad((a: tf.Tensor) => tf.add(
              tf.sum(tf.mul(ops.conv(a as tf.Tensor4D, f, [c.s, c.s], pads), w1)),
              tf.sum(tf.mul(ops.depthwiseConv(a as tf.Tensor4D, d, [c.s, c.s], pads, [1, 1], back), w2))))(x);
            const theirs = tf.grad((a: tf.Tensor) => tf.add(
              tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, f, c.s, c.pad), w1)),
              tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, d, c.s, c.pad), w2))))(x);
            const err = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0];
            assert.ok(err < 1e-4, `max difference ${err}`);
            // and the values: our padded forward equals tfjs's 'same'/'valid'
            const fwd = tf.max(tf.abs(tf.sub(ops.conv(x, f, [c.s, c.s], pads), tf.conv2d(x, f, c.s, c.pad)))).dataSync()[0];
            assert.ok(fwd < 1e-4, `forward difference ${fwd}`);
          });
        } finally {
          ops.setExplicitPadding('auto');
        }
      });
    }

    it('max pooling routes the gradient to the first maximum of a window (PyTorch)', () => {
      tf.tidy(() => {
        // window 1: all zero (tie) -> first element; window 2: tie between positions 1 and 2 -> position 1
        const x = tf.tensor4d([0, 0, 5, 7, 0, 0, 7, 1], [1, 2, 4, 1]);
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(ops.maxPoolFirst(a as tf.Tensor4D, [2, 2], [2, 2], 'valid'), tf.tensor4d([2, 3], [1, 1, 2, 1]))))(x);
        assert.deepEqual(Array.from(g.dataSync()), [2, 0, 0, 3, 0, 0, 0, 0]);
      });
    });

    it('input gradients of a small model equal central finite differences', async () => {
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [9, 8, 2], filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
          tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.glorotNormal({ seed: 2 }), activation: 'sigmoid' }),
          tf.layers.batchNormalization({ movingMeanInitializer: tf.initializers.constant({ value: 0.1 }), movingVarianceInitializer: tf.initializers.constant({ value: 2 }) }),
          tf.layers.averagePooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
        ],
      });
      const source = new ProgramSource(layersProgram(model));
      try {
        const x0 = Array.from({ length: 9 * 8 * 2 }, (_, i) => Math.sin(1.3 * i));
        const cls = 2;
        const logit = (v: number[]) => tf.tidy(() => source.logitsOf(tf.tensor4d(v, [1, 9, 8, 2]), ops.PLAIN).dataSync()[cls]);
        const grad = tf.tidy(() => Array.from(tf.grad((a: tf.Tensor) => tf.slice(source.logitsOf(a as tf.Tensor4D, ops.PLAIN), [0, cls], [1, 1]).sum())(tf.tensor4d(x0, [1, 9, 8, 2])).dataSync()));
        const eps = 1e-2;
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < x0.length; i += 7) {
          const up = x0.slice();
          const dn = x0.slice();
          up[i] += eps;
          dn[i] -= eps;
          const fd = (logit(up) - logit(dn)) / (2 * eps);
          worst = Math.max(worst, Math.abs(fd - grad[i]));
          scale = Math.max(scale, Math.abs(fd));
        }
        assert.ok(scale > 1e-3, 'gradient is not trivially zero');
        assert.ok(worst <= 2e-3 * Math.max(1, scale) + 1e-4, `finite differences differ by ${worst} (scale ${scale})`);
        // the logits are the pre-softmax values: softmax of them is the model's prediction
        const pred = tf.tidy(() => Array.from((model.predict(tf.tensor4d(x0, [1, 9, 8, 2])) as tf.Tensor).dataSync()));
        const ours = tf.tidy(() => Array.from(tf.softmax(source.logitsOf(tf.tensor4d(x0, [1, 9, 8, 2]), ops.PLAIN)).dataSync()));
        for (let j = 0; j < 4; j++) assert.ok(Math.abs(pred[j] - ours[j]) < 1e-5);
      } finally {
        source.dispose();
        model.dispose();
      }
    });
  });

  describe('guided backpropagation', () => {
    // x [1,1,2,1] -> Conv2D 1x1, 2 filters, fused ReLU -> ReLU(6) layer -> Flatten -> Dense 2 (logits)
    const x = [1.5, -2];
    const w = [1, -1]; // conv filter per output channel
    const b = [0.5, 0.25];
    const V = [ // dense kernel [4 features (p0k0, p0k1, p1k0, p1k1), 2 classes]
      [2, -1],
      [-3, 1],
      [0.5, 4],
      [-1, -2],
    ];
    let model: tf.LayersModel;
    let ex: Explainer;
    before(async () => {
      model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [1, 2, 1], filters: 2, kernelSize: 1, activation: 'relu', name: 'conv' }),
          tf.layers.reLU({ maxValue: 6, name: 'relu6' }),
          tf.layers.flatten({ name: 'flat' }),
          tf.layers.dense({ units: 2, name: 'dense' }),
        ],
      });
      model.layers[0].setWeights([tf.tensor4d(w, [1, 1, 1, 2]), tf.tensor1d(b)]);
      model.layers[3].setWeights([tf.tensor2d(V), tf.tensor1d([0, 0])]);
      ex = await createTfjsExplainer(model);
    });
    after(() => {
      ex.dispose();
      model.dispose();
    });

    /** hand computation: pre = x_p*w_k + b_k; h = relu(pre) (then relu6, not saturated here) */
    function expected(cls: number, guidedRelu6: boolean, sign = 1): number[] {
      const dx = [0, 0];
      for (let p = 0; p < 2; p++) {
        for (let k = 0; k < 2; k++) {
          const pre = x[p] * w[k] + b[k];
          const h = Math.max(pre, 0);
          let g = sign * V[p * 2 + k][cls]; // dY/dh at the relu6 output
          // relu6 layer: plain backward passes g where 0 < h < 6; guided also needs g > 0
          g = h > 0 && h < 6 ? (guidedRelu6 ? Math.max(g, 0) : g) : 0;
          // fused conv relu, guided: g * (pre > 0) * (g > 0)
          g = pre > 0 ? Math.max(g, 0) : 0;
          dx[p] += g * w[k];
        }
      }
      return dx;
    }

    for (const cls of [0, 1]) {
      for (const guidedRelu6 of [false, true]) {
        it(`matches the hand-computed guided gradient (class ${cls}, guidedRelu6 ${guidedRelu6})`, async () => {
          const r = await ex.explain({ data: new Float32Array(x), shape: [1, 1, 2, 1], layout: 'nhwc' }, { method: 'guided-backprop', targets: cls, guidedRelu6, layer: 'conv' });
          const got = Array.from(r.explanations[0].inputGradient as Float32Array);
          const want = expected(cls, guidedRelu6);
          for (let i = 0; i < 2; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `dx[${i}] = ${got[i]}, expected ${want[i]}`);
        });
      }
    }

    it('counterfactual guided gradients follow the negated score', async () => {
      const r = await ex.explain({ data: new Float32Array(x), shape: [1, 1, 2, 1], layout: 'nhwc' }, { method: 'guided-backprop', targets: 1, counterfactual: true, layer: 'conv' });
      const e = r.explanations[0];
      assert.ok(Math.abs(e.score + r.logits[1]) < 1e-6, 'score is the negated logit');
      const want = expected(1, false, -1);
      const got = Array.from(e.inputGradient as Float32Array);
      for (let i = 0; i < 2; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `dx[${i}] = ${got[i]}, expected ${want[i]}`);
    });

    it('a batch in one pass equals the images one at a time', async () => {
      const data = new Float32Array([1.5, -2, -0.5, 3, 0.2, 0.1]);
      const all = await ex.explain({ data, shape: [3, 1, 2, 1], layout: 'nhwc' }, { method: 'guided-backprop', targets: [0, 1, 0], layer: 'conv' });
      for (let i = 0; i < 3; i++) {
        const one = await ex.explain({ data: data.slice(2 * i, 2 * i + 2), shape: [1, 1, 2, 1], layout: 'nhwc' }, { method: 'guided-backprop', targets: [0, 1, 0][i], layer: 'conv' });
        assert.deepEqual(Array.from(all.explanations[i].inputGradient as Float32Array), Array.from(one.explanations[0].inputGradient as Float32Array));
      }
    });
  });

  describe('nsfwjs MobileNetV2 (LayersModel) on the example photos', () => {
    let model: tf.LayersModel;
    let ex: Explainer;
    let data: Float32Array;
    before(async () => {
      model = (await loadTfjsModel(NSFW)) as tf.LayersModel;
      ex = await createTfjsExplainer(model);
      data = await rgbBatch(IMAGES, 224);
    });
    after(() => {
      ex?.dispose();
      model?.dispose();
    });

    it('lists 4-D layers with shapes and defaults to the last one above 1x1', () => {
      const layers = ex.layers();
      const def = layers.filter((l) => l.isDefault);
      assert.equal(def.length, 1);
      assert.equal(ex.defaultLayer, 'out_relu');
      assert.deepEqual(def[0].shape, [null, 7, 7, 1280]);
      assert.ok(layers.every((l) => l.shape.length === 4));
      assert.ok(layers.some((l) => l.name === 'block_16_project_BN'));
      assert.equal(ex.layout, 'nhwc');
    });

    it('Grad-CAM and Guided Grad-CAM: finite maps in [0,1], deterministic, class-dependent, no leaks', async () => {
      const input = { data, shape: [3, 224, 224, 3] as [number, number, number, number], layout: 'nhwc' as const };
      const r1 = await expectNoLeak(() => ex.explain(input, { method: 'guided-gradcam', targets: [0, 2, 4] }));
      assert.equal(r1.engine, await selectTfjsEngine());
      assert.equal(r1.numClasses, 5);
      assert.deepEqual(r1.explanations.map((e) => e.classIndex), [0, 2, 4]);
      checkMaps(r1, 224, 224);
      // the probabilities are the model's own predictions (softmax of the differentiated logits)
      const pred = tf.tidy(() => Array.from((model.predict(tf.tensor4d(data, [3, 224, 224, 3])) as tf.Tensor).dataSync()));
      for (let i = 0; i < pred.length; i++) assert.ok(Math.abs(pred[i] - r1.probabilities[i]) < 1e-4);
      for (const e of r1.explanations) {
        assert.equal((e.inputGradient as Float32Array).length, 224 * 224 * 3);
        assert.ok((e.guidedMap as Float32Array).every(Number.isFinite));
      }
      const r2 = await ex.explain(input, { method: 'gradcam', targets: [0, 2, 4] });
      for (let i = 0; i < 3; i++) assert.deepEqual(r2.explanations[i].map, r1.explanations[i].map, 'deterministic');
      // another class on the same image gives another map
      const r3 = await expectNoLeak(() => ex.explain(input, { targets: [2, 0, 0] }));
      for (let i = 0; i < 2; i++) {
        const d = meanAbsDiff(r3.explanations[i].map as Float32Array, r1.explanations[i].map as Float32Array);
        assert.ok(d > 0.02, `image ${i}: maps of two classes differ by only ${d}`);
      }
    });

    it('top-k targets and counterfactual maps', async () => {
      const input = { data: data.subarray(0, 224 * 224 * 3), shape: [1, 224, 224, 3] as [number, number, number, number], layout: 'nhwc' as const };
      const r = await expectNoLeak(() => ex.explain(input, { targets: { topK: 2 } }));
      assert.equal(r.explanations.length, 2);
      assert.ok(r.explanations[0].probability >= r.explanations[1].probability);
      const cf = await expectNoLeak(() => ex.explain(input, { targets: r.explanations[0].classIndex, counterfactual: true }));
      assert.ok(Math.abs(cf.explanations[0].score + r.explanations[0].score) < 1e-5, 'counterfactual score is negated');
      const w = r.explanations[0].weights as Float32Array;
      const wc = cf.explanations[0].weights as Float32Array;
      for (let k = 0; k < w.length; k += 97) assert.ok(Math.abs(w[k] + wc[k]) < 1e-6, 'counterfactual weights are negated');
    });
  });

  describe('@vladmandic/human emotion (GraphModel)', () => {
    let model: tf.GraphModel;
    let ex: Explainer;
    let data: Float32Array;
    before(async () => {
      model = (await loadTfjsModel(EMOTION)) as tf.GraphModel;
      ex = await createTfjsExplainer(model);
      data = await greyBatch(IMAGES, 64);
    });
    after(() => {
      ex?.dispose();
      model?.dispose();
    });

    it('loads from disk, lists graph nodes, and reproduces model.execute', async () => {
      assert.ok(model instanceof tf.GraphModel);
      const layers = ex.layers();
      assert.equal(layers.filter((l) => l.isDefault).length, 1);
      assert.ok(layers.every((l) => l.shape.length === 4 && l.shape[0] === null));
      const def = layers.find((l) => l.isDefault)!;
      assert.ok((def.shape[1] as number) > 1);
      const r = await ex.explain({ data, shape: [3, 64, 64, 1], layout: 'nhwc' }, { method: 'gradcam' });
      const probs = tf.tidy(() => Array.from((model.execute(tf.tensor4d(data, [3, 64, 64, 1])) as tf.Tensor).dataSync()));
      assert.equal(r.numClasses, 7);
      for (let i = 0; i < probs.length; i++) assert.ok(Math.abs(probs[i] - r.probabilities[i]) < 1e-4, 'softmax of our logits = model output');
    });

    it('maps on every candidate-sized layer: finite, in [0,1], deterministic, class-dependent, no leaks', async () => {
      const layer = ex.layers().filter((l) => (l.shape[1] as number) > 2).slice(-2)[0].name;
      const input = { data, shape: [3, 64, 64, 1] as [number, number, number, number], layout: 'nhwc' as const };
      const a = await expectNoLeak(() => ex.explain(input, { method: 'guided-gradcam', layer, targets: 3 }));
      checkMaps(a, 64, 64);
      const b = await expectNoLeak(() => ex.explain(input, { method: 'guided-gradcam', layer, targets: 3 }));
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(a.explanations[i].map, b.explanations[i].map);
        assert.deepEqual(a.explanations[i].inputGradient, b.explanations[i].inputGradient);
      }
      const c = await ex.explain(input, { layer, targets: 5 });
      const d = meanAbsDiff(a.explanations[0].map as Float32Array, c.explanations[0].map as Float32Array);
      assert.ok(d > 0.02, `classes 3 and 5 give maps differing by only ${d}`);
    });

    it('its plain input gradient matches finite differences along random directions', async () => {
      const program = (ex as unknown as { adapter: { source: ProgramSource } }).adapter.source;
      const x0 = data.subarray(0, 64 * 64);
      const cls = 3;
      const score = (v: Float32Array) => tf.tidy(() => program.logitsOf(tf.tensor4d(v, [1, 64, 64, 1]), ops.PLAIN).dataSync()[cls]);
      const g = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.slice(program.logitsOf(a as tf.Tensor4D, ops.PLAIN), [0, cls], [1, 1])))(tf.tensor4d(x0, [1, 64, 64, 1])).dataSync());
      const eps = 1e-3;
      for (let d = 0; d < 3; d++) {
        const v = new Float32Array(x0.length).map((_, i) => Math.sin(12.9898 * i + 78.233 * d));
        let gv = 0;
        for (let i = 0; i < v.length; i++) gv += g[i] * v[i];
        const up = x0.map((xi, i) => xi + eps * v[i]);
        const dn = x0.map((xi, i) => xi - eps * v[i]);
        const fd = (score(up) - score(dn)) / (2 * eps);
        assert.ok(Math.abs(fd - gv) <= 0.03 * Math.abs(gv) + 1e-3, `direction ${d}: finite difference ${fd}, gradient ${gv}`);
      }
    });
  });

  describe('nsfwjs MobileNetV2 "mid" (GraphModel with fused depthwise convolutions and Relu6)', () => {
    it('reproduces model.execute and gives guided maps without leaks, ReLU6 guided only on request', async () => {
      const dir = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2_mid');
      const model = (await loadTfjsModel(path.join(dir, 'model.min.js'))) as tf.GraphModel;
      const gx = await createTfjsExplainer(model);
      try {
        assert.ok(model instanceof tf.GraphModel);
        assert.match(gx.defaultLayer, /Conv_1\/Relu6$/);
        const data = (await rgbBatch(IMAGES.slice(0, 1), 224));
        const input = { data, shape: [1, 224, 224, 3] as [number, number, number, number], layout: 'nhwc' as const };
        const r = await expectNoLeak(() => gx.explain(input, { method: 'guided-gradcam' }));
        const probs = tf.tidy(() => Array.from((model.execute(tf.tensor4d(data, [1, 224, 224, 3])) as tf.Tensor).dataSync()));
        for (let i = 0; i < probs.length; i++) assert.ok(Math.abs(probs[i] - r.probabilities[i]) < 1e-4);
        checkMaps(r, 224, 224);
        const g6 = await expectNoLeak(() => gx.explain(input, { method: 'guided-backprop', guidedRelu6: true }));
        const plain = r.explanations[0].inputGradient as Float32Array;
        const guided6 = g6.explanations[0].inputGradient as Float32Array;
        assert.ok(meanAbsDiff(plain, guided6) > 0, 'guiding ReLU6 changes the input gradient');
      } finally {
        gx.dispose();
        model.dispose();
      }
    });
  });

  describe('a hand-written GraphModel with shape arithmetic', () => {
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const f32 = { type: 'DT_FLOAT' };
    const constNode = (name: string, dtype: string, dims: number[]) => ({
      name, op: 'Const', attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: { dim: dims.map((d) => ({ size: String(d) })) } } } },
    });
    const nodes = [
      { name: 'x', op: 'Placeholder', attr: { dtype: f32, shape: { shape: { dim: [{ size: '-1' }, { size: '6' }, { size: '6' }, { size: '1' }] } } } },
      constNode('w', 'DT_FLOAT', [3, 3, 1, 4]),
      { name: 'conv', op: 'Conv2D', input: ['x', 'w'], attr: { T: f32, strides: { list: { i: ['1', '2', '2', '1'] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } } } },
      { name: 'relu', op: 'Relu', input: ['conv'], attr: { T: f32 } },
      { name: 'shape', op: 'Shape', input: ['relu'], attr: { T: f32, out_type: { type: 'DT_INT32' } } },
      constNode('b0', 'DT_INT32', [1]), constNode('e0', 'DT_INT32', [1]), constNode('s0', 'DT_INT32', [1]),
      { name: 'n', op: 'StridedSlice', input: ['shape', 'b0', 'e0', 's0'], attr: { T: { type: 'DT_INT32' }, Index: { type: 'DT_INT32' }, shrink_axis_mask: { i: '1' } } },
      constNode('m1', 'DT_INT32', []),
      { name: 'pack', op: 'Pack', input: ['n', 'm1'], attr: { T: { type: 'DT_INT32' }, N: { i: '2' }, axis: { i: '0' } } },
      { name: 'flat', op: 'Reshape', input: ['relu', 'pack'], attr: { T: f32, Tshape: { type: 'DT_INT32' } } },
      constNode('wd', 'DT_FLOAT', [36, 3]),
      { name: 'logits', op: 'MatMul', input: ['flat', 'wd'], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
      { name: 'probs', op: 'Softmax', input: ['logits'], attr: { T: f32 } },
      { name: 'out', op: 'Identity', input: ['probs'], attr: { T: f32 } },
    ];
    const specs: Array<{ name: string; shape: number[]; dtype: 'float32' | 'int32'; values: number[] }> = [
      { name: 'w', shape: [3, 3, 1, 4], dtype: 'float32', values: Array.from({ length: 36 }, (_, i) => Math.sin(i + 1)) },
      { name: 'b0', shape: [1], dtype: 'int32', values: [0] },
      { name: 'e0', shape: [1], dtype: 'int32', values: [1] },
      { name: 's0', shape: [1], dtype: 'int32', values: [1] },
      { name: 'm1', shape: [], dtype: 'int32', values: [-1] },
      { name: 'wd', shape: [36, 3], dtype: 'float32', values: Array.from({ length: 108 }, (_, i) => Math.cos(0.7 * i)) },
    ];
    let model: tf.GraphModel;
    let gx: Explainer;
    before(async () => {
      const weightData = new Uint8Array(specs.reduce((s, w) => s + 4 * w.values.length, 0));
      let off = 0;
      for (const w of specs) {
        const arr = w.dtype === 'float32' ? new Float32Array(w.values) : new Int32Array(w.values);
        weightData.set(new Uint8Array(arr.buffer), off);
        off += arr.byteLength;
      }
      model = await tf.loadGraphModel(tf.io.fromMemory({
        modelTopology: { node: nodes, versions: { producer: 1 } } as unknown as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: specs.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
        weightData: weightData.buffer,
        format: 'graph-model',
      }));
      gx = await createTfjsExplainer(model);
    });
    after(() => {
      gx?.dispose();
      model?.dispose();
    });

    it('takes the logits before the final Softmax and runs Shape/StridedSlice/Pack/Reshape', async () => {
      assert.deepEqual(gx.layers().map((l) => [l.name, l.shape]), [['conv', [null, 3, 3, 4]], ['relu', [null, 3, 3, 4]]]);
      assert.equal(gx.defaultLayer, 'relu');
      const data = new Float32Array(2 * 36).map((_, i) => Math.sin(0.3 * i));
      const r = await expectNoLeak(() => gx.explain({ data, shape: [2, 6, 6, 1], layout: 'nhwc' }, { method: 'guided-gradcam', targets: [0, 2] }));
      const logits = tf.tidy(() => Array.from((model.execute(tf.tensor4d(data, [2, 6, 6, 1]), 'logits') as tf.Tensor).dataSync()));
      for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(logits[i] - r.logits[i]) < 1e-5);
      checkMaps(r, 6, 6);
      // Grad-CAM weights: the spatial mean of d logit / d relu, i.e. of the Dense weights of that class
      const wd = specs[5].values;
      for (const [img, cls] of [[0, 0], [1, 2]]) {
        const w = r.explanations[img].weights as Float32Array;
        for (let k = 0; k < 4; k++) {
          let mean = 0;
          for (let p = 0; p < 9; p++) mean += wd[(p * 4 + k) * 3 + cls] / 9;
          assert.ok(Math.abs(w[k] - mean) < 1e-5, `weight ${k}: ${w[k]} vs ${mean}`);
        }
      }
    });
  });

  describe('arguments and failures', () => {
    let model: tf.LayersModel;
    let ex: TfjsModelExplainer;
    const input = { data: new Float32Array(2 * 8 * 8 * 3).map((_, i) => Math.sin(i)), shape: [2, 8, 8, 3] as [number, number, number, number], layout: 'nhwc' as const };
    before(async () => {
      model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'c1', kernelInitializer: tf.initializers.glorotNormal({ seed: 21 }) }),
          tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'c2', kernelInitializer: tf.initializers.glorotNormal({ seed: 22 }) }),
          tf.layers.globalAveragePooling2d({ name: 'gap' }),
          tf.layers.dense({ units: 3, activation: 'softmax', name: 'out', kernelInitializer: tf.initializers.glorotNormal({ seed: 23 }) }),
        ],
      });
      ex = await createTfjsExplainer(model);
    });
    after(() => {
      ex.dispose();
      model.dispose();
    });

    it('rejects a bad layer name with a RangeError naming layer, leaking nothing', async () => {
      await expectNoLeak(() => assert.rejects(ex.explain(input, { layer: 'nope' }), { name: 'RangeError', message: /for layer but received 'nope'/ }));
      await expectNoLeak(() => assert.rejects(ex.explain(input, { layer: 42 as never }), { name: 'TypeError', message: /for layer/ }));
    });

    it('rejects bad targets, methods and inputs, leaking nothing', async () => {
      await expectNoLeak(() => assert.rejects(ex.explain(input, { targets: 7 }), { name: 'RangeError', message: /targets/ }));
      await expectNoLeak(() => assert.rejects(ex.explain(input, { targets: [0] }), { name: 'RangeError', message: /targets/ }));
      await expectNoLeak(() => assert.rejects(ex.explain(input, { method: 'cam' as never }), { name: 'RangeError', message: /for method/ }));
      await expectNoLeak(() => assert.rejects(ex.explain(input, { counterfactual: 1 as never }), { name: 'TypeError', message: /for counterfactual/ }));
      await expectNoLeak(() => assert.rejects(ex.explain({ ...input, shape: [2, 8, 8, 4] }), { name: 'RangeError', message: /input/ }));
      await expectNoLeak(() => assert.rejects(ex.explain({ ...input, data: new Float32Array(5) }), { name: 'RangeError', message: /input.data/ }));
      await expectNoLeak(() => assert.rejects(ex.explain({ ...input, shape: [2, 9, 9, 3], data: new Float32Array(2 * 9 * 9 * 3) }), { name: 'RangeError', message: "Expected 8 (the model's input is [N,8,8,3], nhwc) for input.shape[1] but received 9 of type number" }));
    });

    it('takes a tf.Tensor4D as input, leaves it to the caller, and rejects other ranks', async () => {
      const t = tf.tensor4d(input.data, input.shape);
      const a = await ex.explain(input, { method: 'guided-gradcam', targets: 1 });
      const b = await expectNoLeak(() => ex.explain(t, { method: 'guided-gradcam', targets: 1 }));
      assert.ok(!t.isDisposed);
      assert.deepEqual(b.explanations[1].map, a.explanations[1].map);
      assert.deepEqual(b.explanations[0].guidedMap, a.explanations[0].guidedMap);
      const t3 = tf.zeros([2, 8, 8]);
      await expectNoLeak(() => assert.rejects(ex.explain(t3 as never), { name: 'RangeError', message: 'Expected a 4-D tf.Tensor [n, H, W, C] (NHWC) for input but received a tf.Tensor of shape [2,8,8]' }));
      t.dispose();
      t3.dispose();
      await assert.rejects(ex.explain(t), { name: 'RangeError', message: 'Expected a live tf.Tensor for input but received a disposed tf.Tensor' });
    });

    it('takes NCHW input and returns guided outputs in NCHW', async () => {
      const nchw = new Float32Array(input.data.length);
      for (let n = 0; n < 2; n++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) {
        nchw[((n * 3 + c) * 8 + y) * 8 + x] = input.data[((n * 8 + y) * 8 + x) * 3 + c];
      }
      const a = await ex.explain(input, { method: 'guided-gradcam', targets: 1 });
      const b = await expectNoLeak(() => ex.explain({ data: nchw, shape: [2, 3, 8, 8], layout: 'nchw' }, { method: 'guided-gradcam', targets: 1 }));
      assert.equal(b.layout, 'nchw');
      for (let n = 0; n < 2; n++) {
        assert.deepEqual(a.explanations[n].map, b.explanations[n].map);
        const ga = a.explanations[n].inputGradient as Float32Array;
        const gb = b.explanations[n].inputGradient as Float32Array;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) {
          assert.equal(gb[(c * 8 + y) * 8 + x], ga[(y * 8 + x) * 3 + c]);
        }
      }
    });

    it('gives the same results when the batch runs in chunks', async () => {
      const whole = await ex.explain(input, { method: 'guided-gradcam', targets: { topK: 2 } });
      process.env.GRADCAM_TFJS_CHUNK = '1';
      try {
        const parts = await expectNoLeak(() => ex.explain(input, { method: 'guided-gradcam', targets: { topK: 2 } }));
        assert.deepEqual(parts.logits, whole.logits);
        assert.equal(parts.explanations.length, 4);
        for (let i = 0; i < 4; i++) {
          const a = whole.explanations[i];
          const b = parts.explanations[i];
          assert.equal(a.classIndex, b.classIndex);
          for (const key of ['map', 'weights', 'inputGradient', 'guidedMap'] as const) {
            const u = a[key] as Float32Array;
            const v = b[key] as Float32Array;
            for (let j = 0; j < u.length; j++) assert.ok(Math.abs(u[j] - v[j]) <= 1e-6 * (1 + Math.abs(u[j])), `${key}[${j}]`);
          }
        }
      } finally {
        delete process.env.GRADCAM_TFJS_CHUNK;
      }
    });

    it('explains the pre-softmax logit of a softmax output layer', async () => {
      const r = await ex.explain(input, { targets: 0 });
      const logits = tf.tidy(() => {
        const h = (model.layers[2].apply(model.layers[1].apply(model.layers[0].apply(tf.tensor4d(input.data, input.shape)))) as tf.Tensor);
        const [k, bias] = model.layers[3].getWeights();
        return Array.from(tf.add(tf.matMul(h as tf.Tensor2D, k as tf.Tensor2D), bias).dataSync());
      });
      for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(r.logits[i] - logits[i]) < 1e-5);
      assert.ok(Math.abs(r.explanations[0].score - logits[0]) < 1e-5);
    });

    it('explains a custom score function (a class margin), linear in the class gradients', async () => {
      const margin = (l: tf.Tensor2D) => tf.reshape(tf.sub(tf.slice(l, [0, 0], [-1, 1]), tf.slice(l, [0, 2], [-1, 1])), [-1]);
      const r = await expectNoLeak(() => ex.explain(input, { method: 'guided-gradcam', targets: { score: margin } }));
      const a = await ex.explain(input, { targets: 0 });
      const b = await ex.explain(input, { targets: 2 });
      assert.equal(r.explanations.length, 2);
      for (let i = 0; i < 2; i++) {
        const e = r.explanations[i];
        assert.equal(e.classIndex, -1);
        assert.ok(Number.isNaN(e.probability));
        assert.ok(Math.abs(e.score - (r.logits[i * 3] - r.logits[i * 3 + 2])) < 1e-5);
        const wa = a.explanations[i].weights as Float32Array, wb = b.explanations[i].weights as Float32Array;
        (e.weights as Float32Array).forEach((w, k) => assert.ok(Math.abs(w - (wa[k] - wb[k])) < 1e-5, `weights[${k}]`));
        assert.ok((e.guidedMap as Float32Array).every(Number.isFinite));
      }
      const cf = await ex.explain(input, { targets: { score: margin }, counterfactual: true });
      assert.ok(Math.abs(cf.explanations[0].score + r.explanations[0].score) < 1e-6);
      await expectNoLeak(() => assert.rejects(ex.explain(input, { targets: { score: (l: tf.Tensor2D) => tf.sum(l) } }),
        { name: 'TypeError', message: 'Expected function returning a tf.Tensor of shape [2] (one score per image) for targets.score but received a tf.Tensor of shape []' }));
      await expectNoLeak(() => assert.rejects(ex.explain(input, { targets: { score: 3 as never } }),
        { name: 'TypeError', message: 'Expected function (logits) => scores for targets.score but received 3 of type number' }));
    });

    it('works on a SplitModel for Grad-CAM and refuses guided methods there', async () => {
      const split = {
        features: (x: tf.Tensor4D) => model.layers[1].apply(model.layers[0].apply(x)) as tf.Tensor4D,
        head: (a: tf.Tensor4D) => {
          const [k, bias] = model.layers[3].getWeights();
          return tf.add(tf.matMul(tf.mean(a, [1, 2]) as tf.Tensor2D, k as tf.Tensor2D), bias) as tf.Tensor2D;
        },
        layerName: 'c2',
      };
      const sx = await createTfjsExplainer(split);
      const a = await expectNoLeak(() => sx.explain(input, { targets: 2 }));
      const b = await ex.explain(input, { targets: 2, layer: 'c2' });
      for (let n = 0; n < 2; n++) {
        const ma = a.explanations[n].map as Float32Array;
        const mb = b.explanations[n].map as Float32Array;
        for (let i = 0; i < ma.length; i++) assert.ok(Math.abs(ma[i] - mb[i]) < 1e-5);
      }
      await assert.rejects(sx.explain(input, { method: 'guided-backprop' }), { name: 'GradcamError' });
      sx.dispose();
      // a channels-first SplitModel takes NCHW batches (and only those), with the same maps
      const toNchw = (t: tf.Tensor4D) => tf.transpose(t, [0, 3, 1, 2]) as tf.Tensor4D;
      const nchwSplit = {
        layout: 'nchw' as const,
        features: (x: tf.Tensor4D) => toNchw(split.features(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D)),
        head: (a: tf.Tensor4D) => split.head(tf.transpose(a, [0, 2, 3, 1]) as tf.Tensor4D),
      };
      const cx = await createTfjsExplainer(nchwSplit);
      const nchwData = tf.tidy(() => toNchw(tf.tensor4d(input.data, input.shape)).dataSync() as Float32Array);
      const c = await expectNoLeak(() => cx.explain({ data: nchwData, shape: [2, 3, 8, 8], layout: 'nchw' }, { targets: 2 }));
      for (let n = 0; n < 2; n++) {
        const ma = a.explanations[n].map as Float32Array;
        const mc = c.explanations[n].map as Float32Array;
        for (let i = 0; i < ma.length; i++) assert.ok(Math.abs(ma[i] - mc[i]) < 1e-5);
      }
      await assert.rejects(cx.explain(input), { name: 'RangeError', message: "Expected 'nchw' (the model's layout) for input.layout but received 'nhwc' of type string" });
      cx.dispose();
    });

    it('inlines nested models and runs unknown layers through layer.apply', async () => {
      const inp = tf.input({ shape: [6, 6, 2] });
      // seeded weights: with unlucky random ones the argmax class's Grad-CAM is all zero (legitimately)
      const c = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'inner_conv', kernelInitializer: tf.initializers.glorotNormal({ seed: 11 }) }).apply(inp) as tf.SymbolicTensor;
      const up = tf.layers.upSampling2d({ size: [2, 2], name: 'inner_up' }).apply(c) as tf.SymbolicTensor;
      const base = tf.model({ inputs: inp, outputs: up, name: 'base' });
      const outer = tf.sequential({ layers: [base, tf.layers.globalAveragePooling2d({ name: 'gap2' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'top', kernelInitializer: tf.initializers.glorotNormal({ seed: 12 }) })] });
      const nx = await createTfjsExplainer(outer);
      try {
        const names = nx.layers().map((l) => l.name);
        assert.ok(names.includes('inner_conv') && names.includes('inner_up'), names.join(', '));
        assert.equal(nx.defaultLayer, 'inner_up');
        assert.deepEqual((nx as unknown as { fallbackLayers: string[] }).fallbackLayers, ['UpSampling2D']);
        const data = new Float32Array(2 * 6 * 6 * 2).map((_, i) => Math.cos(i));
        const r = await expectNoLeak(() => nx.explain({ data, shape: [2, 6, 6, 2], layout: 'nhwc' }, { method: 'guided-gradcam', layer: 'inner_conv' }));
        const pred = tf.tidy(() => Array.from((outer.predict(tf.tensor4d(data, [2, 6, 6, 2])) as tf.Tensor).dataSync()));
        for (let i = 0; i < pred.length; i++) assert.ok(Math.abs(pred[i] - r.probabilities[i]) < 1e-5);
        checkMaps(r, 6, 6);
      } finally {
        nx.dispose();
        outer.dispose();
      }
    });

    it('refuses work after dispose and loads nothing from a missing path', async () => {
      const m2 = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 1, kernelSize: 1 }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
      const e2 = await createTfjsExplainer(m2);
      e2.dispose();
      await assert.rejects(e2.explain({ data: new Float32Array(16), shape: [1, 4, 4, 1], layout: 'nhwc' }), { name: 'GradcamError' });
      m2.dispose();
      await assert.rejects(loadTfjsModel('/nonexistent/model.json'), { name: 'RangeError', message: /pathOrUrl/ });
      await assert.rejects(createTfjsExplainer(model, { engine: 'cuda' as never }), { name: 'RangeError', message: /for engine/ });
    });
  });
});
