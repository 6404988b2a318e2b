/**
 * The ONNX adapter against pytorch-grad-cam and Captum (../shared/reference): dY/dA, Grad-CAM
 * stages, guided backprop and Guided Grad-CAM for smallvgg and mobilenet_v2, both class modes.
 */
import * as assert from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildGradientModel, createOnnxExplainer, OnnxExplainer } from '../lib/onnx';
import { loadModel, saveModel } from '../lib/onnx/proto';
import type { ExplainResult, Explanation } from '../lib/types';
import { hasFile, hasReference, readF32, referenceDir } from './helpers/reference-data';

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.strictEqual(a.length, b.length, 'length');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |a-b| <= rel * max|ref| */
function assertRel(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, rel: number): void {
  const d = maxDiff(got, ref);
  const scale = maxAbs(ref);
  assert.ok(scale > 0, `${what}: reference is all zero`);
  assert.ok(d <= rel * scale, `${what}: max diff ${d} > ${rel} x ${scale}`);
}

function assertAbs(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: number): void {
  const d = maxDiff(got, ref);
  assert.ok(d <= tol, `${what}: max diff ${d} > ${tol}`);
}

function assertCosine(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, minCos: number, maxRelL2: number): void {
  let dot = 0; let na = 0; let nb = 0; let nd = 0;
  for (let i = 0; i < ref.length; i++) {
    dot += got[i] * ref[i]; na += got[i] * got[i]; nb += ref[i] * ref[i]; nd += (got[i] - ref[i]) ** 2;
  }
  const cos = dot / Math.sqrt(na * nb);
  const relL2 = Math.sqrt(nd / nb);
  assert.ok(cos >= minCos, `${what}: cosine ${cos} < ${minCos}`);
  assert.ok(relL2 <= maxRelL2, `${what}: relative L2 ${relL2} > ${maxRelL2}`);
}

/** concatenate one field of the explanations (image-major, one class each) */
function gather(r: ExplainResult, key: keyof Explanation): Float32Array {
  const parts = r.explanations.map((e) => e[key] as Float32Array);
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const CASES: Array<{ model: 'smallvgg' | 'mobilenet_v2'; batch: 'b1' | 'b4' }> = [
  { model: 'smallvgg', batch: 'b1' },
  { model: 'smallvgg', batch: 'b4' },
  { model: 'mobilenet_v2', batch: 'b1' },
];

describe('onnx: equal to pytorch-grad-cam / Captum (../shared/reference)', function () {
  this.timeout(120000);
  before(function () {
    if (!hasReference()) this.skip();
  });

  for (const { model, batch } of CASES) {
    describe(`${model} ${batch}`, () => {
      let ex: OnnxExplainer;
      before(async () => {
        ex = (await createOnnxExplainer(path.join(referenceDir(), 'models', `${model}.onnx`))) as OnnxExplainer;
      });
      after(() => ex?.dispose());

      it('the generated forward+backward model stays within 1% of the original size (weights flipped in the graph)', () => {
        const file = path.join(referenceDir(), 'models', `${model}.onnx`);
        const original = fs.statSync(file).size;
        const gm = buildGradientModel(loadModel(file), { layers: [ex.defaultLayer], inputGrad: true });
        const size = saveModel(gm.model).byteLength;
        assert.ok(size < original * 1.01, `${size} bytes vs ${original}`);
        assert.ok(gm.backwardNodes > 10);
      });

      for (const cls of ['argmax', 'class3'] as const) {
        it(`${cls}: dY/dA, Grad-CAM stages, Captum LayerGradCam, guided backprop, Guided Grad-CAM`, async () => {
          const x = readF32(`inputs/${batch}.bin`);
          const n = batch === 'b1' ? 1 : 4;
          const input = { data: x, shape: [n, 3, 224, 224] as [number, number, number, number], layout: 'nchw' as const };
          const out = `outputs/${model}/${batch}/${cls}`;
          const targets = cls === 'argmax' ? 'argmax' as const : 3;

          // dY/dA straight from the gradient session the explainer uses
          const session = await ex.adapter.session({ layers: [ex.defaultLayer], inputGradient: 'guided', guidedRelu6: false }, [224, 224]);
          const classes = new Int32Array(n).fill(cls === 'argmax' ? -1 : 3);
          const run = await session.run(input, classes);
          assertRel('grads', run.layers[0].grads, readF32(`${out}/grads.bin`), 1e-3);
          assertRel('activations', run.layers[0].activations, readF32(`outputs/${model}/${batch}/activations.bin`), 1e-3);
          assertRel('logits', run.logits, readF32(`outputs/${model}/${batch}/logits.bin`), 1e-4);

          const r = await ex.explain(input, { method: 'guided-gradcam', targets });
          assert.strictEqual(r.engine, 'onnxruntime-cpu');
          assert.strictEqual(r.explanations.length, n);
          if (cls === 'class3') assert.ok(r.explanations.every((e) => e.classIndex === 3));
          else assert.deepStrictEqual(r.explanations.map((e) => e.classIndex), Array.from(run.classes));
          if (hasFile(`${out}/gradcam.lib.weights.bin`)) assertRel('weights', gather(r, 'weights'), readF32(`${out}/gradcam.lib.weights.bin`), 1e-3);
          assertRel('lowres_raw', gather(r, 'lowresRaw'), readF32(`${out}/gradcam.lib.lowres_raw.bin`), 1e-3);
          assertAbs('final', gather(r, 'map'), readF32(`${out}/gradcam.lib.final.bin`), 1e-3);
          if (hasFile(`${out}/captum.layergradcam.raw.bin`)) assertRel('captum raw', gather(r, 'lowresRaw'), readF32(`${out}/captum.layergradcam.raw.bin`), 1e-3);
          const gb = gather(r, 'inputGradient');
          const ggc = gather(r, 'guidedMap');
          if (model === 'smallvgg') {
            assertRel('guided backprop', gb, readF32(`${out}/guided_backprop.lib.bin`), 1e-3);
            assertRel('guided gradcam', ggc, readF32(`${out}/guided_gradcam.lib.bin`), 1e-3);
          } else {
            assertCosine('guided backprop', gb, readF32(`${out}/guided_backprop.lib.bin`), 0.9998, 0.02);
            assertCosine('guided gradcam', ggc, readF32(`${out}/guided_gradcam.lib.bin`), 0.9998, 0.02);
          }
        });
      }
    });
  }
});
