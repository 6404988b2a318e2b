/**
 * The ONNX backward-graph generator against PyTorch on tiny models that cover its op set
 * (test/fixtures/onnx, made by scripts/onnx-fixtures.py: torch.onnx.export at opsets 11, 13, 17).
 *
 * Per fixture: a plain ONNX Runtime forward reproduces the fixture (checks the fixture itself), then
 * OnnxGradientSession's logits, activations, dY/dA (argmax and a fixed class), plain input gradient,
 * guided input gradient (pytorch-grad-cam's GuidedBackpropReLU on nn.ReLU modules only; the F.relu
 * nodes listed in the manifest are passed as unguidedNodes), its counterfactual, and for ReLU6
 * models the guided-ReLU6 variant; finally createOnnxExplainer's Grad-CAM maps.
 * Tolerance: max |ours - torch| <= 1e-4 * max |torch|.
 */
import * as assert from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createOnnxExplainer, OnnxGradientSession } from '../lib/onnx';
import type { GradientRun } from '../lib/onnx';
import { loadModel, saveModel } from '../lib/onnx/proto';
import type { ExplainResult, Explainer, InputBatch } from '../lib/types';

interface FileInfo { shape: number[]; dtype: string }
interface Fixture {
  name: string; opset: number; model: string; input: string; output: string;
  inputShape: [number, number, number, number]; numClasses: number;
  target: string; targetShape: number[]; unguidedNodes: string[]; guidedRelu6: boolean; dynamicBatch: boolean;
  classes: { argmax: number[]; fixed: number[] }; fixedClass: number; ops: string[];
  files: Record<string, FileInfo>;
}

/** The fixtures folder: test/fixtures/onnx of the repository this compiled file belongs to. */
function fixturesDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const cand = path.join(dir, 'test', 'fixtures', 'onnx');
    if (fs.existsSync(path.join(cand, 'manifest.json'))) return cand;
    dir = path.dirname(dir);
  }
  throw new Error(`test/fixtures/onnx/manifest.json not found above ${__dirname}`);
}

const DIR = fixturesDir();
const MANIFEST = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { fixtures: Fixture[]; allOps: string[] };
const TOL = 1e-4;

function readF32(fx: Fixture, rel: string): Float32Array {
  const info = fx.files[rel];
  assert.ok(info, `${fx.name}: no file ${rel} in the manifest`);
  const buf = fs.readFileSync(path.join(DIR, fx.name, rel));
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  assert.strictEqual(out.length, info.shape.reduce((a, b) => a * b, 1), `${fx.name}/${rel}: size`);
  return out;
}

/** max |a - b| <= tol * max |ref|, with a message saying where and how far. */
function assertClose(actual: Float32Array | undefined, ref: Float32Array, what: string, tol = TOL): void {
  assert.ok(actual, `${what}: missing`);
  assert.strictEqual(actual.length, ref.length, `${what}: length ${actual.length} != ${ref.length}`);
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  if (scale === 0) {
    // e.g. squeezenet's counterfactual guided gradient: -1 seeds meet its guided classifier ReLU, nothing passes
    const m = actual.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    assert.ok(m <= 1e-12, `${what}: torch gives all zeros, got max |value| ${m}`);
    return;
  }
  let worst = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= tol * scale,
    `${what}: max |diff| ${worst.toExponential(3)} at ${at} (got ${actual[at]}, torch ${ref[at]}) > ${tol} * max|ref| ${scale.toExponential(3)}`);
}

function negate(x: Float32Array): Float32Array {
  return x.map((v) => -v);
}

/** A lazily computed value shared by several tests; a failure is reported by each test that needs it. */
function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}

describe('ONNX generator vs PyTorch fixtures (test/fixtures/onnx)', function () {
  this.timeout(60000);
  const opened: Array<{ dispose(): unknown }> = [];
  after(async () => {
    for (const s of opened) await s.dispose();
  });

  it('the fixtures cover the op set of the ONNX issue', () => {
    const needed = ['Conv', 'BatchNormalization', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Mul',
      'Add', 'Sub', 'Div', 'MatMul', 'Gemm', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Flatten', 'Reshape', 'Concat',
      'Transpose', 'Squeeze', 'Unsqueeze', 'Pad', 'ReduceMean', 'Softmax', 'Resize', 'Identity', 'Dropout', 'Shape',
      'Gather', 'Slice', 'Cast'];
    assert.deepStrictEqual(needed.filter((op) => !MANIFEST.allOps.includes(op)), []);
    assert.deepStrictEqual([...new Set(MANIFEST.fixtures.map((f) => f.opset))].sort(), [11, 13, 17]);
  });

  for (const fx of MANIFEST.fixtures) {
    describe(`${fx.name} (opset ${fx.opset}, target ${fx.target})`, () => {
      const modelPath = path.join(DIR, fx.model);
      const bytes = new Uint8Array(fs.readFileSync(modelPath));
      const input = (): InputBatch => ({ data: readF32(fx, 'input.bin'), shape: fx.inputShape, layout: 'nchw' });
      const n = fx.inputShape[0];
      const argmaxRequest = new Int32Array(n).fill(-1);
      const fixedRequest = new Int32Array(n).fill(fx.fixedClass);

      const session = (opts: Parameters<typeof OnnxGradientSession.create>[1]) => lazy(async () => {
        const s = await OnnxGradientSession.create(bytes, { layer: fx.target, executionProvider: 'cpu', ...opts });
        opened.push(s);
        return s;
      });
      const plain = session({ inputGrad: 'plain' });
      const guided = session({ inputGrad: 'guided', unguidedNodes: fx.unguidedNodes });
      const run = (s: () => Promise<OnnxGradientSession>, classes: Int32Array, counterfactual = false) =>
        lazy(async (): Promise<GradientRun> => (await s()).run(input(), classes, { counterfactual }));
      const plainArgmax = run(plain, argmaxRequest);
      const plainFixed = run(plain, fixedRequest);
      const guidedArgmax = run(guided, argmaxRequest);
      const guidedFixed = run(guided, fixedRequest);
      const guidedCf = run(guided, argmaxRequest, true);

      it('plain ONNX Runtime reproduces the fixture logits and target activations', async () => {
        // independent of the generator: the target tensor is made a graph output of the original model
        const m = loadModel(modelPath);
        m.graph!.output!.push({ name: fx.target, type: { tensorType: { elemType: 1 } } });
        const s = await ort.InferenceSession.create(saveModel(m), { executionProviders: ['cpu'] });
        try {
          const x = input();
          const out = await s.run({ [fx.input]: new ort.Tensor('float32', x.data, x.shape) });
          assertClose(out[fx.output].data as Float32Array, readF32(fx, 'logits.bin'), 'ORT logits');
          assert.deepStrictEqual(out[fx.target].dims, fx.targetShape);
          assertClose(out[fx.target].data as Float32Array, readF32(fx, 'activations.bin'), 'ORT activations');
        } finally {
          await s.release();
        }
      });

      it('logits, activations and feature shape', async () => {
        const r = await plainArgmax();
        assert.strictEqual(r.numClasses, fx.numClasses);
        assertClose(r.logits, readF32(fx, 'logits.bin'), 'logits');
        assertClose(r.layers[0].activations, readF32(fx, 'activations.bin'), 'activations');
        const [, k, h, w] = fx.targetShape;
        const shape = r.layers[0].featureShape;
        assert.deepStrictEqual({ n: shape.n, k: shape.k, h: shape.h, w: shape.w }, { n, k, h, w });
        assert.deepStrictEqual(Array.from(r.classes), fx.classes.argmax, 'argmax classes');
      });

      it('dY/dA for the argmax classes and for a fixed class', async () => {
        assertClose((await plainArgmax()).layers[0].grads, readF32(fx, 'argmax/grads.bin'), 'grads argmax');
        const f = await plainFixed();
        assert.deepStrictEqual(Array.from(f.classes), fx.classes.fixed, 'fixed classes');
        assertClose(f.layers[0].grads, readF32(fx, 'fixed/grads.bin'), `grads class ${fx.fixedClass}`);
      });

      it('plain input gradient', async () => {
        assertClose((await plainArgmax()).inputGrad, readF32(fx, 'argmax/input_grad.bin'), 'plain dY/dx');
      });

      it(`guided input gradient (unguided: ${fx.unguidedNodes.join(', ') || 'none'}), argmax and fixed class`, async () => {
        assertClose((await guidedArgmax()).inputGrad, readF32(fx, 'argmax/guided.bin'), 'guided dY/dx argmax');
        assertClose((await guidedFixed()).inputGrad, readF32(fx, 'fixed/guided.bin'), `guided dY/dx class ${fx.fixedClass}`);
      });

      it('a guided session still gives the plain dY/dA (Grad-CAM and guided backprop from one run)', async () => {
        const g = await guidedArgmax();
        assertClose(g.layers[0].activations, readF32(fx, 'activations.bin'), 'activations (guided session)');
        assertClose(g.layers[0].grads, readF32(fx, 'argmax/grads.bin'), 'grads argmax (guided session)');
        assertClose((await guidedFixed()).layers[0].grads, readF32(fx, 'fixed/grads.bin'), 'grads fixed (guided session)');
      });

      it('a deconvnet session gives the plain dY/dA too, and an input gradient of its own', async () => {
        const s = await session({ inputGrad: 'deconvnet', guidedRelu6: fx.guidedRelu6, unguidedNodes: fx.unguidedNodes })();
        const r = await s.run(input(), argmaxRequest);
        assertClose(r.layers[0].activations, readF32(fx, 'activations.bin'), 'activations (deconvnet session)');
        assertClose(r.layers[0].grads, readF32(fx, 'argmax/grads.bin'), 'grads argmax (deconvnet session)');
        // models without a ReLU on the input path (e.g. SiLU only) have one input gradient for all rules
        const plainGrad = (await plainArgmax()).inputGrad as Float32Array;
        const guidedGrad = (await guidedArgmax()).inputGrad as Float32Array;
        const dc = r.inputGrad as Float32Array;
        const differs = (a: Float32Array) => a.some((v, i) => Math.abs(v - plainGrad[i]) > 1e-6);
        assert.strictEqual(dc.length, plainGrad.length);
        assert.ok(dc.every(Number.isFinite));
        if (differs(guidedGrad)) assert.ok(differs(dc), 'the deconvnet gradient differs from the plain one');
        else assertClose(dc, plainGrad, 'deconvnet dY/dx of a model without ReLUs = plain');
      });

      it('counterfactual: negated dY/dA, guided gradient of -Y', async () => {
        const r = await guidedCf();
        assertClose(r.layers[0].grads, negate(readF32(fx, 'argmax/grads.bin')), 'counterfactual grads');
        assertClose(r.inputGrad, readF32(fx, 'argmax/guided_cf.bin'), 'counterfactual guided dY/dx');
      });

      if (fx.guidedRelu6) {
        it('guidedRelu6: Clip(0,6) guided like ReLU', async () => {
          const s = await session({ inputGrad: 'guided', guidedRelu6: true, unguidedNodes: fx.unguidedNodes })();
          const r = await s.run(input(), argmaxRequest);
          assertClose(r.inputGrad, readF32(fx, 'argmax/guided_relu6.bin'), 'guided-ReLU6 dY/dx');
          assertClose(r.layers[0].grads, readF32(fx, 'argmax/grads.bin'), 'grads (guided-ReLU6 session)');
        });
      }

      if (fx.dynamicBatch) {
        // misc_*: the batch flows through Shape/Gather/Unsqueeze/Concat/Reshape (x.view(x.size(0), c, -1))
        it('a batch of 1 equals that image of the batch (dynamic batch axis)', async () => {
          const x = input();
          const per = x.data.length / n;
          const one: InputBatch = { data: x.data.slice(per, 2 * per), shape: [1, ...fx.inputShape.slice(1)] as [number, number, number, number], layout: 'nchw' };
          const r = await (await guided()).run(one, new Int32Array([-1]));
          assert.deepStrictEqual(Array.from(r.classes), [fx.classes.argmax[1]]);
          const slice = (rel: string) => { const a = readF32(fx, rel); const m = a.length / n; return a.slice(m, 2 * m); };
          assertClose(r.logits, slice('logits.bin'), 'logits (batch of 1)');
          assertClose(r.layers[0].grads, slice('argmax/grads.bin'), 'grads (batch of 1)');
          assertClose(r.inputGrad, slice('argmax/guided.bin'), 'guided dY/dx (batch of 1)');
        });
      }

      const explainer = lazy(async () => {
        const ex: Explainer = await createOnnxExplainer(bytes, { executionProvider: 'cpu', unguidedNodes: fx.unguidedNodes });
        opened.push(ex);
        return ex;
      });
      const checkMaps = (res: ExplainResult): void => {
        const [, , H, W] = fx.inputShape;
        assert.strictEqual(res.explanations.length, n);
        assert.deepStrictEqual(res.explanations.map((e) => e.classIndex), fx.classes.argmax);
        let anyPositive = false;
        for (const e of res.explanations) {
          assert.ok(e.map, 'map');
          assert.strictEqual(e.map.length, H * W);
          for (const v of e.map) {
            assert.ok(Number.isFinite(v) && v >= 0 && v <= 1, `${fx.name}: map value ${v} outside [0,1]`);
            if (v > 0) anyPositive = true;
          }
        }
        assert.ok(anyPositive, 'every Grad-CAM map is all zero');
      };

      it('createOnnxExplainer gradcam (short backward): maps in [0,1], weights = spatial mean of torch dY/dA', async () => {
        const res = await (await explainer()).explain(input(), { layer: fx.target, method: 'gradcam' });
        checkMaps(res);
        const [, k, h, w] = fx.targetShape;
        const grads = readF32(fx, 'argmax/grads.bin');
        for (const e of res.explanations) {
          const ref = new Float32Array(k);
          for (let c = 0; c < k; c++) {
            let sum = 0;
            for (let i = 0; i < h * w; i++) sum += grads[(e.image * k + c) * h * w + i];
            ref[c] = sum / (h * w);
          }
          assertClose(e.weights, ref, `explainer Grad-CAM weights image ${e.image}`);
        }
      });

      it('createOnnxExplainer guided-gradcam: maps in [0,1], guided backprop as PyTorch', async () => {
        const res = await (await explainer()).explain(input(), { layer: fx.target, method: 'guided-gradcam' });
        checkMaps(res);
        const guidedRef = readF32(fx, 'argmax/guided.bin');
        const per = guidedRef.length / n;
        for (const e of res.explanations) {
          assertClose(e.inputGradient, guidedRef.subarray(e.image * per, (e.image + 1) * per), `explainer guided backprop image ${e.image}`);
        }
      });

      it("unguidedNodes 'functional': guided backprop as PyTorch (F.relu found by name); the default guides every ReLU", async () => {
        const ex: Explainer = await createOnnxExplainer(bytes, { executionProvider: 'cpu', unguidedNodes: 'functional' });
        const all: Explainer = await createOnnxExplainer(bytes, { executionProvider: 'cpu' });
        const none: Explainer = await createOnnxExplainer(bytes, { executionProvider: 'cpu', unguidedNodes: [] });
        opened.push(ex, all, none);
        const res = await ex.explain(input(), { layer: fx.target, method: 'guided-backprop' });
        const [ra, rn] = [await all.explain(input(), { method: 'guided-backprop' }), await none.explain(input(), { method: 'guided-backprop' })];
        assert.deepStrictEqual(Array.from(ra.explanations[0].inputGradient as Float32Array), Array.from(rn.explanations[0].inputGradient as Float32Array));
        if (fx.unguidedNodes.length) {
          assert.notDeepStrictEqual(Array.from(ra.explanations[0].inputGradient as Float32Array), Array.from(res.explanations[0].inputGradient as Float32Array));
        }
        const guidedRef = readF32(fx, 'argmax/guided.bin');
        const per = guidedRef.length / n;
        for (const e of res.explanations) {
          assertClose(e.inputGradient, guidedRef.subarray(e.image * per, (e.image + 1) * per),
            `default-options guided backprop image ${e.image} (PyTorch leaves ${fx.unguidedNodes.join(', ') || 'no node'} unguided)`);
        }
      });
    });
  }
});
