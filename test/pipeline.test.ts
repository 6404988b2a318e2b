import assert from 'node:assert/strict';
import { assembleResult, softmax, PipelineInput } from '../lib/cam/pipeline';
import { reference } from '../lib/kernels/reference';

function rand(len: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: len }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

describe('CAM pipeline (assembleResult)', () => {
  // n=3 images, feature map k=4, 3x5 (nhwc), input 3x12x10 nhwc, 6 classes
  const n = 3, k = 4, h = 3, w = 5, H = 12, W = 10, c = 3, numClasses = 6;
  const featureShape = { n, k, h, w, layout: 'nhwc' as const };
  const activations = rand(n * h * w * k, 1).map(Math.abs);
  const logits = rand(n * numClasses, 2);
  const round0 = { classes: Int32Array.from([1, 4, 0]), grads: rand(n * h * w * k, 3), guided: rand(n * H * W * c, 4) };
  const round1 = { classes: Int32Array.from([-1, 2, -1]), grads: rand(n * h * w * k, 5), guided: rand(n * H * W * c, 6) };
  const base: PipelineInput = {
    method: 'guided-gradcam', layer: 'conv', counterfactual: false,
    inputShape: [n, H, W, c], layout: 'nhwc', featureShape, activations, logits, numClasses,
    rounds: [round0, round1], engine: 'test', device: 'js', gradientsMs: 1,
  };

  it('runs the fused tail and guided product per round, image-major, skipping absent classes', async () => {
    const r = await assembleResult(base);
    assert.equal(r.device, 'js');
    assert.deepEqual(r.explanations.map((e) => [e.image, e.classIndex]), [[0, 1], [1, 4], [1, 2], [2, 0]]);
    assert.deepEqual(r.mapSize, { h, w, k });
    const tail1 = reference.gradcamTail(activations, round1.grads, featureShape, { outH: H, outW: W, relu: true });
    const e = r.explanations[2]; // image 1, round 1
    assert.deepEqual(Array.from(e.weights!), Array.from(tail1.weights.subarray(k, 2 * k)));
    assert.deepEqual(Array.from(e.lowresRaw!), Array.from(tail1.lowresRaw.subarray(h * w, 2 * h * w)));
    assert.deepEqual(Array.from(e.map!), Array.from(tail1.map.subarray(H * W, 2 * H * W)));
    const gg = reference.guidedProduct(round1.guided, tail1.map, n, c, H, W, 'nhwc');
    assert.deepEqual(Array.from(e.guidedGradcam!), Array.from(gg.subarray(H * W * c, 2 * H * W * c)));
    assert.deepEqual(Array.from(e.guidedBackprop!), Array.from(round1.guided.subarray(H * W * c, 2 * H * W * c)));
    assert.equal(e.score, logits[1 * numClasses + 2]);
    assert.ok(Math.abs(e.probability - softmax(logits, numClasses)[numClasses + 2]) < 1e-7);
    for (const x of r.explanations) {
      assert.ok(x.map!.every((v) => v >= 0 && v <= 1));
    }
  });

  it('counterfactual negates the reported score; gradcam alone carries no guided arrays', async () => {
    const r = await assembleResult({ ...base, method: 'gradcam', counterfactual: true });
    assert.equal(r.explanations[0].score, -logits[1]);
    assert.equal(r.explanations[0].guidedBackprop, undefined);
    assert.equal(r.counterfactual, true);
  });

  it('a custom-score round explains every image with classIndex -1 and its own score', async () => {
    const scores = Float32Array.from([0.5, -1, 2]);
    const r = await assembleResult({ ...base, method: 'gradcam', rounds: [{ classes: new Int32Array(3).fill(-1), grads: round0.grads, scores }] });
    assert.deepEqual(r.explanations.map((e) => [e.image, e.classIndex, e.score]), [[0, -1, 0.5], [1, -1, -1], [2, -1, 2]]);
    assert.ok(r.explanations.every((e) => Number.isNaN(e.probability)));
  });

  it('guided-backprop needs no gradients at the layer', async () => {
    const rounds = [{ classes: round0.classes, guided: round0.guided }];
    const r = await assembleResult({ ...base, method: 'guided-backprop', rounds });
    assert.equal(r.explanations.length, 3);
    assert.equal(r.explanations[0].map, undefined);
    assert.equal(r.explanations[2].guidedBackprop!.length, H * W * c);
  });

  it('rejects adapter output of the wrong size with a clear error', async () => {
    await assert.rejects(assembleResult({ ...base, rounds: [{ ...round0, grads: new Float32Array(5) }] }),
      /the model adapter returned gradients of length 5, expected 180/);
  });

  it('softmax rows sum to one and are stable for large logits', () => {
    const p = softmax(Float32Array.from([1000, 1001, 0, 0]), 2);
    assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-6 && p[1] > p[0]);
    assert.ok(Math.abs(p[2] - 0.5) < 1e-7);
  });
});
