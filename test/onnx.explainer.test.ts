/**
 * The ONNX Explainer end to end: layers, the three methods, counterfactuals, top-k and per-image
 * target lists, any input size the model allows, and the errors for bad arguments.
 */
import * as assert from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GradcamError } from '../lib/errors';
import { createOnnxExplainer, functionalRelus, GraphIndex, listOnnxLayers, OnnxExplainer, OnnxGradientSession } from '../lib/onnx';
import { DataType, ModelProto, NodeProto, TensorProto, floatTensor, int64Tensor, loadModel, node, saveModel } from '../lib/onnx/proto';
import type { Explainer, InputBatch } from '../lib/types';
import { hasReference, readF32, referenceDir, repoRoot } from './helpers/reference-data';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}
const rand = (name: string, dims: number[], seed: number, scale = 0.5): TensorProto => {
  const r = rng(seed);
  return floatTensor(name, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r() * scale));
};

/** x [N,3,H,W] (H, W symbolic) -> Conv -> Relu -> [mid] -> GlobalAveragePool -> Flatten -> [tail] -> Gemm -> logits [N,5] */
function tinyModel(opts: { mid?: NodeProto[]; tail?: NodeProto[]; symbolic?: boolean } = {}): ModelProto {
  const mid = opts.mid ?? [];
  const tail = opts.tail ?? [];
  const last = (list: NodeProto[], dflt: string) => (list.length ? (list[list.length - 1].output as string[])[0] : dflt);
  const a = last(mid, 'r');
  const f = last(tail, 'f');
  const hw = opts.symbolic === false ? [{ dimValue: 16 }, { dimValue: 16 }] : [{ dimParam: 'H' }, { dimParam: 'W' }];
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      node: [
        node('Conv', ['x', 'cw', 'cb'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c'], ['r'], 'relu'),
        ...mid,
        node('GlobalAveragePool', [a], ['g'], 'gap'),
        node('Flatten', ['g'], ['f'], 'flatten', { axis: 1 }),
        ...tail,
        node('Gemm', [f, 'fw', 'fb'], ['logits'], 'fc', { transB: 1 }),
      ],
      initializer: [rand('cw', [4, 3, 3, 3], 1), rand('cb', [4], 2, 0.1), rand('fw', [5, 4], 3, 1), rand('fb', [5], 4, 0.1)],
      input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, ...hw] } } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 5 }] } } } }],
    },
  };
}

function randomInput(n: number, h: number, w: number, seed = 5): InputBatch {
  const r = rng(seed);
  return { data: Float32Array.from({ length: n * 3 * h * w }, () => r()), shape: [n, 3, h, w], layout: 'nchw' };
}

describe('onnx: Explainer API', function () {
  this.timeout(60000);

  describe('tiny model with a symbolic input size', () => {
    let ex: Explainer;
    before(async () => {
      ex = await createOnnxExplainer(saveModel(tinyModel()), { executionProvider: 'cpu', intraOpThreads: 1 });
    });
    after(() => ex.dispose());

    it('lists layers with the default and its layout', () => {
      assert.strictEqual(ex.layout, 'nchw');
      assert.strictEqual(ex.defaultLayer, 'r');
      assert.deepStrictEqual(ex.layers(), [
        { name: 'c', type: 'Conv', shape: [null, 4, null, null], isDefault: false },
        { name: 'r', type: 'Relu', shape: [null, 4, null, null], isDefault: true },
        { name: 'g', type: 'GlobalAveragePool', shape: [null, 4, 1, 1], isDefault: false },
      ]);
    });

    it('explains inputs of any spatial size the model allows', async () => {
      for (const [h, w] of [[16, 16], [20, 12]]) {
        const r = await ex.explain(randomInput(2, h, w), { method: 'guided-gradcam' });
        assert.strictEqual(r.engine, 'onnxruntime-cpu');
        assert.deepStrictEqual(r.mapSize, { h, w, k: 4 });
        assert.strictEqual(r.explanations.length, 2);
        for (const e of r.explanations) {
          assert.strictEqual(e.map?.length, h * w);
          assert.strictEqual(e.inputGradient?.length, 3 * h * w);
          assert.strictEqual(e.guidedMap?.length, 3 * h * w);
        }
      }
    });

    it('counterfactual negates the score and the channel weights', async () => {
      const x = randomInput(1, 8, 8);
      const a = await ex.explain(x, { targets: 2 });
      const b = await ex.explain(x, { targets: 2, counterfactual: true });
      const [ea, eb] = [a.explanations[0], b.explanations[0]];
      assert.strictEqual(b.counterfactual, true);
      assert.strictEqual(eb.score, -ea.score);
      assert.strictEqual(ea.score, a.logits[2]);
      for (let k = 0; k < 4; k++) assert.ok(Math.abs((eb.weights as Float32Array)[k] + (ea.weights as Float32Array)[k]) < 1e-7);
    });

    it('top-k and per-image class lists: one explanation per (image, class), equal to single-class runs', async () => {
      const x = randomInput(2, 10, 10, 9);
      const r = await ex.explain(x, { targets: { topK: 3 } });
      assert.strictEqual(r.explanations.length, 6);
      for (let i = 0; i < 2; i++) {
        const row = Array.from(r.logits.subarray(i * 5, i * 5 + 5));
        const order = row.map((_, j) => j).sort((p, q) => row[q] - row[p]).slice(0, 3);
        assert.deepStrictEqual(r.explanations.filter((e) => e.image === i).map((e) => e.classIndex), order);
      }
      const e = r.explanations.find((q) => q.image === 1 && q.classIndex === r.explanations[5].classIndex);
      const single = await ex.explain(x, { targets: [0, e?.classIndex as number] });
      assert.deepStrictEqual(Array.from(single.explanations[1].lowresRaw as Float32Array), Array.from(e?.lowresRaw as Float32Array));

      const lists = await ex.explain(x, { targets: [[1, 4], [0]] });
      assert.deepStrictEqual(lists.explanations.map((q) => [q.image, q.classIndex]), [[0, 1], [0, 4], [1, 0]]);
    });

    it('guided backprop alone gives input gradients and no maps', async () => {
      const r = await ex.explain(randomInput(1, 8, 8), { method: 'guided-backprop' });
      const e = r.explanations[0];
      assert.strictEqual(e.map, undefined);
      assert.strictEqual(e.inputGradient?.length, 3 * 64);
      assert.ok((e.inputGradient as Float32Array).some((v) => v !== 0));
    });

    it('rejects bad arguments with errors naming them', async () => {
      const x = randomInput(1, 8, 8);
      const cases: Array<[unknown, unknown, RegExp, typeof TypeError | typeof RangeError]> = [
        [null, {}, /for input but received null/, TypeError],
        [{ ...x, data: [1, 2] }, {}, /Float32Array for input\.data/, TypeError],
        [{ ...x, data: new Float32Array(5) }, {}, /for input\.data but received Float32Array\(5\)/, RangeError],
        [{ ...x, shape: [1, 3, 8] }, {}, /for input\.shape/, TypeError],
        [{ ...x, shape: [1, 3, 8, 0] }, {}, /positive integer for input\.shape\[3\]/, RangeError],
        [{ ...x, shape: [1, 1, 8, 24] }, {}, /for input\.shape\[1\]/, RangeError],
        [{ ...x, layout: 'nhwc' }, {}, /'nchw' \(the model's layout\) for input\.layout/, RangeError],
        [x, { method: 'gradcam+++' }, /for method but received 'gradcam\+\+\+'/, RangeError],
        [x, { layer: 'nope' }, /for layer but received 'nope'/, RangeError],
        [x, { layer: 3 }, /for layer but received 3 of type number/, TypeError],
        [x, { targets: 5 }, /for targets but received 5/, RangeError],
        [x, { targets: [1, 2] }, /array of length 1 .* for targets/, RangeError],
        [x, { counterfactual: 'yes' }, /boolean for counterfactual/, TypeError],
        [x, { guidedRelu6: 1 }, /boolean for guidedRelu6/, TypeError],
        [x, 'gradcam', /object for options/, TypeError],
      ];
      for (const [input, options, re, cls] of cases) {
        await assert.rejects(ex.explain(input as InputBatch, options as never), (e: unknown) => {
          assert.ok(e instanceof cls, `${re}: got ${(e as Error).name}: ${(e as Error).message}`);
          assert.match((e as Error).message, re);
          return true;
        });
      }
    });
  });

  it('rejects bad model and options arguments', async () => {
    await assert.rejects(createOnnxExplainer(42 as never), /Expected ONNX file path or Uint8Array for model but received 42 of type number/);
    await assert.rejects(createOnnxExplainer(new Uint8Array([1, 2, 3])), GradcamError);
    await assert.rejects(createOnnxExplainer('/nonexistent/model.onnx'), /Cannot read ONNX model/);
    const bytes = saveModel(tinyModel());
    await assert.rejects(createOnnxExplainer(bytes, { executionProvider: 'tpu' as never }), /one of 'auto', 'cuda', 'cpu' for executionProvider but received 'tpu'/);
    await assert.rejects(createOnnxExplainer(bytes, { intraOpThreads: 0 }), /positive integer for intraOpThreads but received 0/);
  });

  it('an op without a rule between the default layer and the logits fails when the explainer is built', async () => {
    const m = tinyModel({ tail: [node('Cos', ['f'], ['e'], 'head_cos')] });
    await assert.rejects(createOnnxExplainer(saveModel(m), { executionProvider: 'cpu' }), (e: unknown) => {
      assert.ok(e instanceof GradcamError);
      assert.match(e.message, /Cannot differentiate Cos node 'head_cos'/);
      return true;
    });
  });

  it('an op without a rule before the layer: Grad-CAM works, guided methods fail before running', async () => {
    const m = tinyModel({ symbolic: false });
    const g = m.graph as NonNullable<ModelProto['graph']>;
    (g.node as NodeProto[])[0].input = ['xe', 'cw', 'cb'];
    (g.node as NodeProto[]).unshift(node('Cos', ['x'], ['xe'], 'stem_cos'));
    const ex = await createOnnxExplainer(saveModel(m), { executionProvider: 'cpu' });
    const x = randomInput(1, 16, 16);
    const r = await ex.explain(x);
    assert.strictEqual(r.explanations.length, 1);
    await assert.rejects(ex.explain(x, { method: 'guided-gradcam' }), /Cannot differentiate Cos node 'stem_cos'/);
    ex.dispose();
  });

  it('a final Softmax: the score is the pre-softmax logit (or the tensor named by output)', async () => {
    const plain = tinyModel();
    const soft = tinyModel();
    const nodes = soft.graph?.node as NodeProto[];
    nodes[nodes.length - 1].output = ['z'];
    nodes.push(node('Softmax', ['z'], ['logits'], 'softmax', { axis: 1 }));
    const x = randomInput(2, 8, 8, 33);
    const [ea, eb] = [await createOnnxExplainer(saveModel(plain)), await createOnnxExplainer(saveModel(soft))];
    const [ra, rb] = [await ea.explain(x, { targets: 2 }), await eb.explain(x, { targets: 2 })];
    assert.deepStrictEqual(Array.from(rb.logits), Array.from(ra.logits));
    assert.deepStrictEqual(Array.from(rb.explanations[1].weights as Float32Array), Array.from(ra.explanations[1].weights as Float32Array));
    const ec = await createOnnxExplainer(saveModel(soft), { output: 'logits' });
    const rc = await ec.explain(x, { targets: 2 });
    const row = Array.from(rc.logits.subarray(0, 5));
    assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5, 'probabilities as scores');
    [ea, eb, ec].forEach((e) => e.dispose());
    await assert.rejects(createOnnxExplainer(saveModel(soft), { output: 'nope' }), /no tensor nope/);
  });

  it('a model exported with a fixed batch of 1 explains batches (one run per image)', async () => {
    const m = tinyModel({ symbolic: false });
    const g = m.graph as NonNullable<ModelProto['graph']>;
    const dims = g.input?.[0].type?.tensorType?.shape?.dim as Array<{ dimValue?: number; dimParam?: string }>;
    dims[0] = { dimValue: 1 };
    // Flatten replaced by the Reshape [1, -1] a fixed-batch export produces
    const flat = (g.node as NodeProto[]).findIndex((x) => x.opType === 'Flatten');
    (g.node as NodeProto[])[flat] = node('Reshape', ['g', 'shape1'], ['f'], 'reshape');
    g.initializer = [...(g.initializer ?? []), int64Tensor('shape1', [2], [1, -1])];
    const ex = await createOnnxExplainer(saveModel(m), { executionProvider: 'cpu' });
    const x = randomInput(3, 16, 16, 21);
    const all = await ex.explain(x, { method: 'guided-gradcam', targets: [1, 2, 3] });
    assert.strictEqual(all.explanations.length, 3);
    const per = 3 * 16 * 16;
    const one = await ex.explain({ data: x.data.slice(per, 2 * per), shape: [1, 3, 16, 16], layout: 'nchw' }, { method: 'guided-gradcam', targets: 2 });
    assert.deepStrictEqual(Array.from(all.explanations[1].guidedMap as Float32Array), Array.from(one.explanations[0].guidedMap as Float32Array));
    assert.deepStrictEqual(Array.from(all.logits.subarray(5, 10)), Array.from(one.logits));
    ex.dispose();
  });

  it('OnnxGradientSession: classes -1 = argmax, -2 = none, counterfactual sign', async () => {
    const s = await OnnxGradientSession.create(saveModel(tinyModel()), { inputSize: [8, 8], executionProvider: 'cpu' });
    assert.deepStrictEqual(s.layers, ['r']);
    const x = randomInput(3, 8, 8, 11);
    const r = await s.run(x, new Int32Array([-1, 2, -2]));
    const c = await s.run(x, new Int32Array([-1, 2, -2]), { counterfactual: true });
    const per = 4 * 64;
    const am = Array.from(r.logits.subarray(0, 5)).indexOf(Math.max(...r.logits.subarray(0, 5)));
    assert.deepStrictEqual(Array.from(r.classes), [am, 2, -2]);
    assert.ok(r.layers[0].grads.subarray(2 * per).every((v) => v === 0), 'no class: zero gradient');
    assert.ok(r.layers[0].grads.subarray(0, per).some((v) => v !== 0));
    for (let i = 0; i < 2 * per; i++) assert.strictEqual(c.layers[0].grads[i], -r.layers[0].grads[i]);
    assert.deepStrictEqual(r.layers[0].featureShape, { n: 3, k: 4, h: 8, w: 8, layout: 'nchw' });
    await assert.rejects(s.run(x, new Int32Array([0])), /Int32Array of length 3 for classes/);
    await assert.rejects(OnnxGradientSession.create(saveModel(tinyModel()), { layer: 'f', inputSize: [8, 8] }), /Expected a 4-D activation \(f is 2-D\) for layer but received 'f'/);
    await assert.rejects(OnnxGradientSession.create(saveModel(tinyModel()), { layer: 'zz', inputSize: [8, 8] }), /for layer but received 'zz'/);
    await s.dispose();
  });

  it("unguidedNodes 'auto': the top-level F.relu calls of PyTorch exports, as the fixtures list them", function () {
    const dir = path.join(repoRoot(), 'test', 'fixtures', 'onnx');
    if (!fs.existsSync(path.join(dir, 'manifest.json'))) this.skip();
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { fixtures: Array<{ model: string; unguidedNodes: string[] }> };
    assert.ok(manifest.fixtures.some((fx) => fx.unguidedNodes.length > 0), 'some fixture has an F.relu');
    for (const fx of manifest.fixtures) {
      assert.deepStrictEqual(functionalRelus(new GraphIndex(loadModel(path.join(dir, fx.model)))), fx.unguidedNodes, fx.model);
    }
  });

  describe('reference models', () => {
    before(function () {
      if (!hasReference()) this.skip();
    });

    it('listOnnxLayers from a path, bytes and a ModelProto marks the reference target layers as default', () => {
      const vgg = path.join(referenceDir(), 'models', 'smallvgg.onnx');
      const mob = path.join(referenceDir(), 'models', 'mobilenet_v2.onnx');
      const def = (l: ReturnType<typeof listOnnxLayers>) => l.filter((x) => x.isDefault).map((x) => x.name);
      assert.deepStrictEqual(def(listOnnxLayers(vgg)), ['/features/features.14/Relu_output_0']);
      assert.deepStrictEqual(def(listOnnxLayers(new Uint8Array(fs.readFileSync(mob)))), ['/features/features.18/features.18.2/Clip_output_0']);
      const layers = listOnnxLayers(loadModel(vgg));
      const t = layers.find((x) => x.name === '/features/features.14/Relu_output_0');
      assert.deepStrictEqual(t, { name: '/features/features.14/Relu_output_0', type: 'Relu', shape: [null, 128, 28, 28], isDefault: true });
      assert.ok(layers.some((x) => x.type === 'MaxPool'));
      assert.ok(layers.every((x) => x.shape.length === 4));
    });

    it('worker threads: the same numbers, and the event loop keeps running during a run', async () => {
      const file = path.join(referenceDir(), 'models', 'smallvgg.onnx');
      const x = { data: readF32('inputs/b4.bin'), shape: [4, 3, 224, 224] as [number, number, number, number], layout: 'nchw' as const };
      const inProc = (await createOnnxExplainer(file)) as OnnxExplainer;
      const inWorkers = (await createOnnxExplainer(file, { workers: 2 })) as OnnxExplainer;
      const [a, b] = [await inProc.explain(x, { method: 'guided-gradcam' }), await inWorkers.explain(x, { method: 'guided-gradcam' })];
      assert.deepStrictEqual(Array.from(b.explanations[3].inputGradient as Float32Array), Array.from(a.explanations[3].inputGradient as Float32Array));
      assert.deepStrictEqual(Array.from(b.explanations[2].lowresRaw as Float32Array), Array.from(a.explanations[2].lowresRaw as Float32Array));
      const s = await inWorkers.adapter.session({ layers: [inWorkers.defaultLayer], inputGradient: 'guided', guidedRelu6: false }, [224, 224]);
      let ticks = 0;
      const timer = setInterval(() => { ticks++; }, 1);
      const [r1, r2] = await Promise.all([s.run(x, new Int32Array(4).fill(-1)), s.run(x, new Int32Array(4).fill(3))]);
      clearInterval(timer);
      assert.ok(ticks > 3, `event loop ticked ${ticks} times during two runs`);
      assert.deepStrictEqual(Array.from(r1.classes), [6, 7, 6, 4]);
      assert.deepStrictEqual(Array.from(r2.classes), [3, 3, 3, 3]);
      inProc.dispose();
      inWorkers.dispose();
      await assert.rejects(createOnnxExplainer(file, { workers: -1 }), /positive integer for workers but received -1/);
    });

    it('another layer of smallvgg: map at its resolution, Grad-CAM of the same classes', async () => {
      const ex = (await createOnnxExplainer(path.join(referenceDir(), 'models', 'smallvgg.onnx'))) as OnnxExplainer;
      const x = { data: readF32('inputs/b1.bin'), shape: [1, 3, 224, 224] as [number, number, number, number], layout: 'nchw' as const };
      const r = await ex.explain(x, { layer: '/features/features.9/Relu_output_0' });
      assert.deepStrictEqual(r.mapSize, { h: 56, w: 56, k: 64 });
      assert.strictEqual(r.explanations[0].classIndex, 4);
      ex.dispose();
    });
  });
});
