/**
 * The method family through the real adapters: the paper's three ReLU rules on a tfjs network whose
 * input gradients are computed by hand here, saliency against tf.grad of the model itself, and
 * several target layers (one an ancestor of the other, with a skip around it) equal to one layer at
 * a time, on tfjs and ONNX.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createOnnxExplainer } from '../lib/onnx';
import { createTfjsExplainer } from '../lib/tfjs';
import type { Explainer, ExplainResult, InputBatch, ReluRule } from '../lib/types';
import { rng } from './helpers/random';

function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  assert.equal(got.length, want.length, what);
  let scale = 1e-12;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * scale, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

describe('methods through the adapters', function () {
  this.timeout(120000);

  describe('tfjs: the three ReLU rules on a network computed by hand', () => {
    // 2x2x2 input -> 1x1 conv (3, relu) -> 1x1 conv (3, relu) -> GAP -> dense(2, linear): every pixel is independent
    const r = rng(41);
    const W1 = Array.from({ length: 2 * 3 }, () => r() * 2 - 1);
    const W2 = Array.from({ length: 3 * 3 }, () => r() * 2 - 1);
    const W3 = Array.from({ length: 3 * 2 }, () => r() * 2 - 1);
    let model: tf.LayersModel;
    let explainer: Explainer;
    const x = Float32Array.from({ length: 8 }, () => r() * 2 - 1);
    const batch: InputBatch = { data: x, shape: [1, 2, 2, 2], layout: 'nhwc' };
    before(async () => {
      const inp = tf.input({ shape: [2, 2, 2] });
      const c1 = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, activation: 'relu', name: 'c1' });
      const c2 = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, activation: 'relu', name: 'c2' });
      const d = tf.layers.dense({ units: 2, useBias: false, name: 'out' });
      const y = d.apply(tf.layers.globalAveragePooling2d({}).apply(c2.apply(c1.apply(inp)))) as tf.SymbolicTensor;
      model = tf.model({ inputs: inp, outputs: y });
      c1.setWeights([tf.tensor4d(W1, [1, 1, 2, 3])]);
      c2.setWeights([tf.tensor4d(W2, [1, 1, 3, 3])]);
      d.setWeights([tf.tensor2d(W3, [3, 2])]);
      explainer = await createTfjsExplainer(model, { engine: 'cpu' });
    });
    after(() => {
      explainer?.dispose();
      model?.dispose();
    });

    /** dY/dx for class c under a rule, by hand: per pixel, g flows back through W3/4, relu2, W2, relu1, W1 */
    function byHand(rule: ReluRule, c: number): Float32Array {
      const out = new Float32Array(8);
      const back = (g: number, z: number) => (rule === 'deconvnet' ? Math.max(g, 0) : rule === 'guided' ? (z > 0 && g > 0 ? g : 0) : z > 0 ? g : 0);
      for (let p = 0; p < 4; p++) {
        const xi = [x[p * 2], x[p * 2 + 1]];
        const z1 = [0, 1, 2].map((j) => xi[0] * W1[j] + xi[1] * W1[3 + j]);
        const a1 = z1.map((v) => Math.max(v, 0));
        const z2 = [0, 1, 2].map((j) => a1[0] * W2[j] + a1[1] * W2[3 + j] + a1[2] * W2[6 + j]);
        const ga2 = [0, 1, 2].map((j) => W3[j * 2 + c] / 4);
        const gz2 = ga2.map((g, j) => back(g, z2[j]));
        const ga1 = [0, 1, 2].map((i) => gz2[0] * W2[i * 3] + gz2[1] * W2[i * 3 + 1] + gz2[2] * W2[i * 3 + 2]);
        const gz1 = ga1.map((g, j) => back(g, z1[j]));
        for (let k = 0; k < 2; k++) out[p * 2 + k] = gz1[0] * W1[k * 3] + gz1[1] * W1[k * 3 + 1] + gz1[2] * W1[k * 3 + 2];
      }
      return out;
    }

    for (const [method, rule] of [['saliency', 'plain'], ['guided-backprop', 'guided'], ['deconvnet', 'deconvnet']] as const) {
      it(`${method}: the ${rule} rule at every ReLU`, async () => {
        for (const c of [0, 1]) {
          const res = await explainer.explain(batch, { method, targets: c });
          assert.equal(res.reluRule, rule);
          close(`${method} class ${c}`, res.explanations[0].inputGradient!, byHand(rule, c), 1e-5);
        }
      });
    }

    it('the three rules differ here, and saliency equals tf.grad of the model itself', async () => {
      const [p, g, d] = [byHand('plain', 0), byHand('guided', 0), byHand('deconvnet', 0)];
      assert.notDeepEqual(Array.from(p), Array.from(g));
      assert.notDeepEqual(Array.from(g), Array.from(d));
      const res = await explainer.explain(batch, { method: 'saliency', targets: 0 });
      const want = tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.slice(model.apply(xi) as tf.Tensor2D, [0, 0], [1, 1]).sum())(tf.tensor4d(x, [1, 2, 2, 2])).dataSync());
      close('saliency vs tf.grad', res.explanations[0].inputGradient!, want, 1e-5);
    });
  });

  describe('several target layers equal one layer at a time', () => {
    const H = 12, W = 10;
    const input = (layout: 'nchw' | 'nhwc'): InputBatch => {
      const r = rng(5);
      return { data: Float32Array.from({ length: 2 * 3 * H * W }, () => r() * 2 - 1), shape: layout === 'nchw' ? [2, 3, H, W] : [2, H, W, 3], layout };
    };

    async function check(explainer: Explainer, layers: string[], batch: InputBatch): Promise<void> {
      for (const method of ['gradcam', 'layercam'] as const) {
        const multi = await explainer.explain(batch, { method, layer: layers, targets: 1 });
        const singles: ExplainResult[] = [];
        for (const l of layers) singles.push(await explainer.explain(batch, { method, layer: l, targets: 1 }));
        for (let i = 0; i < 2; i++) {
          layers.forEach((l, j) => {
            const lm = multi.explanations[i].layerMaps![j];
            assert.equal(lm.layer, l);
            close(`${method} ${l} lowresRaw image ${i}`, lm.lowresRaw, singles[j].explanations[i].lowresRaw!, 1e-4);
          });
          // the aggregate of two layers differs from either layer alone
          assert.ok(multi.explanations[i].map!.some((v, p) => Math.abs(v - singles[0].explanations[i].map![p]) > 1e-3));
        }
      }
    }

    it('tfjs: conv1 feeds conv2 and, by a skip, the sum after it', async () => {
      const init = (seed: number) => tf.initializers.glorotNormal({ seed });
      const inp = tf.input({ shape: [H, W, 3] });
      const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1', kernelInitializer: init(1) }).apply(inp) as tf.SymbolicTensor;
      const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2', kernelInitializer: init(2) }).apply(c1) as tf.SymbolicTensor;
      const sum = tf.layers.add({ name: 'skip' }).apply([c1, c2]) as tf.SymbolicTensor;
      const y = tf.layers.dense({ units: 3, name: 'out', kernelInitializer: init(3) }).apply(tf.layers.globalAveragePooling2d({}).apply(sum)) as tf.SymbolicTensor;
      const model = tf.model({ inputs: inp, outputs: y });
      const explainer = await createTfjsExplainer(model, { engine: 'cpu' });
      try {
        const before = tf.memory().numTensors;
        await check(explainer, ['conv1', 'conv2'], input('nhwc'));
        await check(explainer, ['conv2', 'conv1'], input('nhwc'));
        assert.equal(tf.memory().numTensors, before, 'no tensors leak');
      } finally {
        explainer.dispose();
        model.dispose();
      }
    });

    it('ONNX: the same in one session run', async () => {
      // the tfjs network exported by hand as ONNX: Conv+Relu, Conv+Relu, Add, GlobalAveragePool, Flatten, Gemm
      const { saveModel } = await import('../lib/onnx/proto');
      const r = rng(9);
      const w = (n: number) => Array.from({ length: n }, () => (r() * 2 - 1) * 0.5);
      const tensor = (name: string, dims: number[], data: number[]) => ({ name, dims, dataType: 1, floatData: data });
      const node = (opType: string, input: string[], output: string[], name: string, attribute: object[] = []) => ({ opType, input, output, name, attribute });
      const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
      const model = {
        irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
        graph: {
          name: 'g',
          input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: H }, { dimValue: W }] } } } }],
          output: [{ name: 'logits', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
          initializer: [tensor('w1', [4, 3, 3, 3], w(108)), tensor('w2', [4, 4, 3, 3], w(144)), tensor('w3', [3, 4], w(12))],
          node: [
            node('Conv', ['x', 'w1'], ['z1'], 'conv1', [ints('pads', [1, 1, 1, 1])]),
            node('Relu', ['z1'], ['a1'], 'relu1'),
            node('Conv', ['a1', 'w2'], ['z2'], 'conv2', [ints('pads', [1, 1, 1, 1])]),
            node('Relu', ['z2'], ['a2'], 'relu2'),
            node('Add', ['a1', 'a2'], ['s'], 'skip'),
            node('GlobalAveragePool', ['s'], ['p'], 'gap'),
            node('Flatten', ['p'], ['f'], 'flat'),
            node('Gemm', ['f', 'w3'], ['logits'], 'out', [{ name: 'transB', type: 2, i: 1 }]),
          ],
        },
      };
      const explainer = await createOnnxExplainer(saveModel(model as never), { executionProvider: 'cpu', workers: 0 });
      try {
        await check(explainer, ['a1', 'a2'], input('nchw'));
        await check(explainer, ['a2', 'a1'], input('nchw'));
      } finally {
        explainer.dispose();
      }
    });
  });
});
