/**
 * The tfjs explainer against pytorch-grad-cam: smallvgg and mobilenet_v2 rebuilt as tfjs
 * LayersModels (NHWC) from the ONNX weights in ../shared/reference must reproduce
 * gradcam.lib.final, guided_backprop.lib and guided_gradcam.lib (reference files are NCHW; the
 * explainer takes the NCHW input and returns guided outputs in the input's layout).
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../lib/arrays';
import { createTfjsExplainer } from '../lib/tfjs';
import type { Explainer, ExplainResult } from '../lib/types';
import { onnxToTfjs, type OnnxAsTfjs } from './helpers/onnx-to-tfjs';
import { hasFile, hasReference, manifest, readF32, referenceDir } from './helpers/reference-data';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}
function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0, r = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / r);
}
/** Concatenate one field of the explanations (image-major, one class per image). */
function gather(r: ExplainResult, key: 'map' | 'inputGradient' | 'guidedMap'): Float32Array {
  return concatFloat32(r.explanations.map((e) => e[key] as Float32Array));
}

const TARGET = {
  smallvgg: '/features/features.14/Relu_output_0',
  mobilenet_v2: '/features/features.18/features.18.2/Clip_output_0',
} as const;

(hasReference() ? describe : describe.skip)('tfjs explainer vs ../shared/reference', function () {
  this.timeout(120000);

  for (const name of ['smallvgg', 'mobilenet_v2'] as const) {
    describe(name, () => {
      let built: OnnxAsTfjs;
      let explainer: Explainer;
      before(async () => {
        built = onnxToTfjs(path.join(referenceDir(), 'models', `${name}.onnx`));
        explainer = await createTfjsExplainer(built.model);
      });
      after(() => {
        explainer?.dispose();
        built?.model.dispose();
      });

      const batches = name === 'smallvgg' ? ['b1', 'b4'] : ['b1'];
      for (const b of batches) {
        for (const cls of ['argmax', 'class3'] as const) {
          const dir = `outputs/${name}/${b}/${cls}`;
          if (!hasFile(`${dir}/guided_gradcam.lib.bin`)) continue;
          it(`${b} ${cls}: logits, Grad-CAM, guided backprop and Guided Grad-CAM match pytorch-grad-cam`, async () => {
            const data = readF32(`inputs/${b}.bin`);
            const n = b === 'b1' ? 1 : 4;
            const before = tf.memory().numTensors;
            const r = await explainer.explain(
              { data, shape: [n, 3, 224, 224], layout: 'nchw' },
              { method: 'guided-gradcam', layer: built.layerOf(TARGET[name]), targets: cls === 'argmax' ? 'argmax' : 3 },
            );
            assert.equal(tf.memory().numTensors, before);
            const classes = (manifest().models[name].argmax as Record<string, number[]>)[b];
            assert.deepEqual(r.explanations.map((e) => e.classIndex), cls === 'argmax' ? classes : new Array(n).fill(3));
            const logits = readF32(`outputs/${name}/${b}/logits.bin`);
            assert.ok(maxAbsDiff(r.logits, logits) <= 1e-3 * Math.max(1, maxAbs(logits)), `logits differ by ${maxAbsDiff(r.logits, logits)}`);

            const map = gather(r, 'map');
            const camErr = maxAbsDiff(map, readF32(`${dir}/gradcam.lib.final.bin`));
            assert.ok(camErr <= 1e-3, `gradcam.lib.final differs by ${camErr}`);

            const gb = gather(r, 'inputGradient');
            const ggc = gather(r, 'guidedMap');
            const gbRef = readF32(`${dir}/guided_backprop.lib.bin`);
            const ggcRef = readF32(`${dir}/guided_gradcam.lib.bin`);
            if (name === 'smallvgg') {
              const e1 = maxAbsDiff(gb, gbRef) / maxAbs(gbRef);
              const e2 = maxAbsDiff(ggc, ggcRef) / maxAbs(ggcRef);
              assert.ok(e1 <= 1e-3, `guided backprop relative error ${e1}`);
              assert.ok(e2 <= 1e-3, `guided Grad-CAM relative error ${e2}`);
            } else {
              for (const [what, a, ref] of [['guided backprop', gb, gbRef], ['guided Grad-CAM', ggc, ggcRef]] as const) {
                const cos = cosine(a, ref);
                const l2 = relL2(a, ref);
                assert.ok(cos >= 0.9998, `${what} cosine ${cos}`);
                assert.ok(l2 <= 0.02, `${what} relative L2 ${l2}`);
              }
            }
          });
        }
      }
    });
  }
});
