/**
 * The shared pipeline (lib/cam/explain.ts) on a fake adapter whose activations and gradients are
 * known: every method against numbers computed independently here, multi-layer aggregation,
 * augSmooth and eigenSmooth, option errors, non-finite gradients, the batch copied at call time.
 */
import assert from 'node:assert/strict';
import { augmentBatch, explain, softmax } from '../lib/cam/explain';
import { METHODS, METHOD_NAMES, findMethod, outputNamesOf } from '../lib/cam/methods';
import { reference } from '../lib/kernels/reference';
import type { FeatureShape } from '../lib/kernels/types';
import type { InputBatch } from '../lib/types';
import { FakeAdapter, seeded } from './helpers/fake-adapter';

const n = 3, c = 3, H = 16, W = 12;
function batchOf(layout: 'nchw' | 'nhwc' = 'nchw', count = n): InputBatch {
  const data = seeded(count * c * H * W, 5).map((v) => v * 2 + 0.3);
  return { data, shape: layout === 'nchw' ? [count, c, H, W] : [count, H, W, c], layout };
}

/** A and dY/dA the fake adapter produces for `classes` (independent of the pipeline). */
async function fakeArrays(fake: FakeAdapter, batch: InputBatch, layer: string, classes: number[], counterfactual = false) {
  const pass = await new FakeAdapter(fake.options).begin(batch, { layers: [layer], layerGrads: true, inputGradient: 'guided', guidedRelu6: false, counterfactual });
  const r = await pass.round(Int32Array.from(classes));
  return { a: pass.activations[0], g: r.layerGrads[0], x: r.inputGradient as Float32Array, logits: pass.logits };
}

/** float64 channel weights / element-wise maps, written out from the papers' formulas. */
function independentRaw(method: string, a: Float32Array, g: Float32Array, s: FeatureShape, original = false): Float64Array {
  const { n: nn, k, h, w } = s;
  const hw = h * w;
  const at = (i: number, ch: number, p: number) => (s.layout === 'nchw' ? (i * k + ch) * hw + p : (i * hw + p) * k + ch);
  const out = new Float64Array(nn * hw);
  for (let i = 0; i < nn; i++) {
    for (let ch = 0; ch < k; ch++) {
      let sa = 0;
      for (let p = 0; p < hw; p++) sa += a[at(i, ch, p)];
      let wk = 0;
      let asum = 0;
      for (let p = 0; p < hw; p++) {
        const gv = g[at(i, ch, p)], av = a[at(i, ch, p)];
        if (method === 'gradcam') wk += gv / hw;
        else if (method === 'xgradcam') wk += (gv * av) / (sa + 1e-7);
        else if (method === 'gradcam++') {
          const aij = gv === 0 ? 0 : (gv * gv) / (2 * gv * gv + sa * gv ** 3 + 1e-6);
          wk += Math.max(gv, 0) * aij;
          asum += aij;
        }
      }
      if (method === 'gradcam++' && original && asum !== 0) wk /= asum;
      for (let p = 0; p < hw; p++) {
        const gv = g[at(i, ch, p)], av = a[at(i, ch, p)];
        let v: number;
        if (method === 'hirescam') v = gv * av;
        else if (method === 'layercam') v = Math.max(gv, 0) * av;
        else if (method === 'gradcam-elementwise') v = Math.max(gv * av, 0);
        else v = wk * av;
        out[i * hw + p] += v;
      }
    }
  }
  return out;
}

/** The top eigenvector of a small symmetric matrix by cyclic Jacobi rotations (another algorithm than the library's). */
function jacobiTop(m: Float64Array, size: number): Float64Array {
  const a = Float64Array.from(m);
  const v = new Float64Array(size * size);
  for (let i = 0; i < size; i++) v[i * size + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < size; p++) for (let q = p + 1; q < size; q++) off += a[p * size + q] ** 2;
    if (off < 1e-24) break;
    for (let p = 0; p < size; p++) for (let q = p + 1; q < size; q++) {
      const apq = a[p * size + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (a[q * size + q] - a[p * size + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
      for (let r = 0; r < size; r++) {
        const arp = a[r * size + p], arq = a[r * size + q];
        a[r * size + p] = cs * arp - sn * arq;
        a[r * size + q] = sn * arp + cs * arq;
      }
      for (let r = 0; r < size; r++) {
        const apr = a[p * size + r], aqr = a[q * size + r];
        a[p * size + r] = cs * apr - sn * aqr;
        a[q * size + r] = sn * apr + cs * aqr;
      }
      for (let r = 0; r < size; r++) {
        const vrp = v[r * size + p], vrq = v[r * size + q];
        v[r * size + p] = cs * vrp - sn * vrq;
        v[r * size + q] = sn * vrp + cs * vrq;
      }
    }
  }
  let best = 0;
  for (let i = 1; i < size; i++) if (a[i * size + i] > a[best * size + best]) best = i;
  return Float64Array.from({ length: size }, (_, r) => v[r * size + best]);
}

/** Per image, the centred channels' first principal component (up to sign), independently. */
function independentProjection(m: Float32Array, s: FeatureShape): Float64Array {
  const { n: nn, k, h, w } = s;
  const hw = h * w;
  const out = new Float64Array(nn * hw);
  const at = (i: number, ch: number, p: number) => (s.layout === 'nchw' ? (i * k + ch) * hw + p : (i * hw + p) * k + ch);
  for (let i = 0; i < nn; i++) {
    const x = new Float64Array(hw * k);
    for (let ch = 0; ch < k; ch++) {
      let mean = 0;
      for (let p = 0; p < hw; p++) mean += m[at(i, ch, p)];
      mean /= hw;
      for (let p = 0; p < hw; p++) x[p * k + ch] = m[at(i, ch, p)] - mean;
    }
    const g = new Float64Array(k * k);
    for (let p = 0; p < hw; p++) for (let r = 0; r < k; r++) for (let q = 0; q < k; q++) g[r * k + q] += x[p * k + r] * x[p * k + q];
    const v = jacobiTop(g, k);
    for (let p = 0; p < hw; p++) for (let q = 0; q < k; q++) out[i * hw + p] += x[p * k + q] * v[q];
  }
  return out;
}

function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number, upToSign = false): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let sign = 1;
  if (upToSign) {
    let dot = 0;
    for (let i = 0; i < got.length; i++) dot += got[i] * want[i];
    sign = dot < 0 ? -1 : 1;
  }
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(sign * got[i] - want[i]);
    assert.ok(d <= tol * Math.max(scale, 1e-12), `${what}[${i}]: ${got[i]} vs ${want[i]} (scale ${scale})`);
  }
}

describe('explain() pipeline on a fake adapter', () => {
  it('Guided Grad-CAM: fused tail and guided product per round, image-major, equal to the reference kernels', async () => {
    const fake = new FakeAdapter();
    const batch = batchOf();
    const r = await explain(fake, batch, { method: 'guided-gradcam', targets: [1, [4, 2], 0], device: 'js' });
    assert.equal(r.device, 'js');
    assert.equal(r.guided, true);
    assert.equal(r.reluRule, 'guided');
    assert.deepEqual(r.explanations.map((e) => [e.image, e.classIndex]), [[0, 1], [1, 4], [1, 2], [2, 0]]);
    const { a, g, x } = await fakeArrays(fake, batch, 'a', [-1, 2, -1]);
    const tail = reference.gradcamTail(a.data, g, a.shape, { outH: H, outW: W, relu: true });
    const e = r.explanations[2]; // image 1, round 1
    const hw = a.shape.h * a.shape.w;
    assert.deepEqual(Array.from(e.weights!), Array.from(tail.weights.subarray(a.shape.k, 2 * a.shape.k)));
    assert.deepEqual(Array.from(e.lowresRaw!), Array.from(tail.lowresRaw.subarray(hw, 2 * hw)));
    assert.deepEqual(Array.from(e.map!), Array.from(tail.map.subarray(H * W, 2 * H * W)));
    const gg = reference.guidedProduct(x, tail.map, n, c, H, W, 'nchw');
    assert.deepEqual(Array.from(e.guidedMap!), Array.from(gg.subarray(H * W * c, 2 * H * W * c)));
    assert.deepEqual(Array.from(e.inputGradient!), Array.from(x.subarray(H * W * c, 2 * H * W * c)));
    assert.ok(Math.abs(e.probability - softmax(r.logits, r.numClasses)[r.numClasses + 2]) < 1e-7);
    for (const ex of r.explanations) assert.ok(ex.map!.every((v) => v >= 0 && v <= 1));
  });

  it('counterfactual negates the score; gradcam alone carries no input gradient', async () => {
    const r = await explain(new FakeAdapter(), batchOf(), { counterfactual: true });
    assert.equal(r.explanations[0].score, -r.logits[r.explanations[0].classIndex]);
    assert.equal(r.explanations[0].inputGradient, undefined);
    assert.equal(r.counterfactual, true);
  });

  it('a custom score explains every image with classIndex -1 and its own score', async () => {
    const r = await explain(new FakeAdapter(), batchOf(), { targets: { score: () => undefined } });
    assert.deepEqual(r.explanations.map((e) => [e.image, e.classIndex, e.score]), [[0, -1, -0.5], [1, -1, 0.5], [2, -1, 1.5]]);
    assert.ok(r.explanations.every((e) => Number.isNaN(e.probability)));
  });

  it('the input-gradient methods ask for no layer and return the raw gradient under their rule', async () => {
    for (const [method, rule] of [['saliency', 'plain'], ['deconvnet', 'deconvnet'], ['guided-backprop', 'guided']] as const) {
      const fake = new FakeAdapter();
      const r = await explain(fake, batchOf(), { method, targets: 2 });
      assert.deepEqual(fake.requests[0].layers, []);
      assert.equal(fake.requests[0].inputGradient, rule);
      assert.equal(r.reluRule, rule);
      assert.equal(r.layer, '');
      assert.equal(r.explanations[0].map, undefined);
      const pass = await new FakeAdapter().begin(batchOf(), { layers: [], layerGrads: false, inputGradient: rule, guidedRelu6: false, counterfactual: false });
      const x = (await pass.round(Int32Array.from([2, 2, 2]))).inputGradient as Float32Array;
      assert.deepEqual(Array.from(r.explanations[2].inputGradient!), Array.from(x.subarray(2 * c * H * W)));
    }
  });

  for (const layout of ['nchw', 'nhwc'] as const) {
    it(`every weighting and element-wise method equals its formula computed in float64 (${layout})`, async () => {
      const batch = batchOf(layout);
      const fake = new FakeAdapter({ layout });
      const { a, g } = await fakeArrays(fake, batch, 'a', [3, 3, 3]);
      for (const method of ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam', 'gradcam-elementwise']) {
        for (const original of method === 'gradcam++' ? [false, true] : [false]) {
          const r = await explain(fake, batch, { method, targets: 3, device: 'js', gradcamPlusPlus: original ? 'original' : undefined });
          const raw = Float32Array.from(r.explanations.flatMap((e) => Array.from(e.lowresRaw!)));
          assertClose(`${method}${original ? ' original' : ''} lowresRaw`, raw, independentRaw(method, a.data, g, a.shape, original), 2e-5);
        }
      }
    });
  }

  it('Eigen-CAM and Eigen-Grad-CAM: the first principal component (another algorithm, up to sign)', async () => {
    const batch = batchOf('nhwc');
    const fake = new FakeAdapter({ layout: 'nhwc', k: 5 });
    const { a, g } = await fakeArrays(fake, batch, 'a', [1, 1, 1]);
    const hw = a.shape.h * a.shape.w;
    const eig = await explain(fake, batch, { method: 'eigencam', targets: 1 });
    assert.equal(fake.requests.at(-1)?.layerGrads, false);
    const ga = a.data.map((v, i) => v * g[i]);
    const eg = await explain(fake, batch, { method: 'eigengradcam', targets: 1 });
    const want = [independentProjection(a.data, a.shape), independentProjection(ga, a.shape)];
    [eig, eg].forEach((r, m) => {
      for (let i = 0; i < n; i++) {
        assertClose(`${r.method} image ${i}`, r.explanations[i].lowresRaw!, want[m].subarray(i * hw, (i + 1) * hw), 1e-4, true);
      }
    });
  });

  it('eigenSmooth: Grad-CAM weights, then the principal component of the weighted activations', async () => {
    const batch = batchOf();
    const fake = new FakeAdapter({ k: 6 });
    const plain = await explain(fake, batch, { targets: 0 });
    const smooth = await explain(fake, batch, { targets: 0, eigenSmooth: true });
    const { a } = await fakeArrays(fake, batch, 'a', [0, 0, 0]);
    const hw = a.shape.h * a.shape.w;
    const per = a.shape.k * hw;
    for (let i = 0; i < n; i++) {
      const w = plain.explanations[i].weights!;
      assert.deepEqual(Array.from(smooth.explanations[i].weights!), Array.from(w));
      const m = new Float32Array(a.data.length);
      for (let j = i * per; j < (i + 1) * per; j++) m[j] = a.data[j] * w[Math.floor(j / hw) % a.shape.k];
      const want = independentProjection(m, a.shape).subarray(i * hw, (i + 1) * hw);
      assertClose(`eigenSmooth image ${i}`, smooth.explanations[i].lowresRaw!, want, 1e-4, true);
    }
  });

  it('several layers: each map scaled to the input size, clipped, averaged and normalized (pytorch-grad-cam)', async () => {
    const batch = batchOf();
    const fake = new FakeAdapter();
    const r = await explain(fake, batch, { layer: ['a', 'b'], targets: 4, device: 'js', guided: true });
    assert.deepEqual(fake.requests[0].layers, ['a', 'b']);
    assert.deepEqual(r.layers, ['a', 'b']);
    const ups: Float32Array[] = [];
    const pass = await new FakeAdapter().begin(batch, { layers: ['a', 'b'], layerGrads: true, guidedRelu6: false, counterfactual: false });
    const round = await pass.round(Int32Array.from([4, 4, 4]));
    for (const [l, layer] of ['a', 'b'].entries()) {
      const act = pass.activations[l];
      assert.equal(act.name, layer);
      const t = reference.gradcamTail(act.data, round.layerGrads[l], act.shape, { outH: H, outW: W, relu: true });
      ups.push(reference.resizeBilinear(t.lowres, n, act.shape.h, act.shape.w, H, W));
      const hw = act.shape.h * act.shape.w;
      for (let i = 0; i < n; i++) {
        assert.deepEqual(Array.from(r.explanations[i].layerMaps![l].lowres), Array.from(t.lowres.subarray(i * hw, (i + 1) * hw)));
      }
    }
    const mean = ups[0].map((v, i) => (Math.max(v, 0) + Math.max(ups[1][i], 0)) / 2);
    const want = reference.minMaxNormalize(mean, n, H * W);
    for (let i = 0; i < n; i++) {
      assertClose(`map ${i}`, r.explanations[i].map!, want.subarray(i * H * W, (i + 1) * H * W), 1e-6);
      assert.equal(r.explanations[i].guidedMap!.length, c * H * W);
    }
  });

  for (const layout of ['nchw', 'nhwc'] as const) {
    it(`augSmooth: one batch of six copies, maps de-augmented and averaged (${layout})`, async () => {
      const batch = batchOf(layout);
      const fake = new FakeAdapter({ layout });
      const r = await explain(fake, batch, { augSmooth: true, device: 'js', guided: true });
      assert.equal(fake.batches.length, 1, 'one begin() for all six copies');
      const aug = fake.batches[0];
      assert.equal(aug.shape[0], 6 * n);
      // the copies, built here independently: copy a = flip? x factor
      const per = c * H * W;
      const copies = [[false, 0.9], [false, 1], [false, 1.1], [true, 0.9], [true, 1], [true, 1.1]] as const;
      const at = (y: number, x: number, ch: number) => (layout === 'nchw' ? (ch * H + y) * W + x : (y * W + x) * c + ch);
      copies.forEach(([flip, f], ai) => {
        for (let i = 0; i < n; i++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let ch = 0; ch < c; ch++) {
          const want = Math.fround(batch.data[i * per + at(y, flip ? W - 1 - x : x, ch)] * f);
          assert.equal(aug.data[(ai * n + i) * per + at(y, x, ch)], want);
        }
      });
      // classes: the unaugmented copy's argmax, for every copy
      const plain = await explain(new FakeAdapter({ layout }), batch, {});
      assert.deepEqual(r.explanations.map((e) => e.classIndex), plain.explanations.map((e) => e.classIndex));
      const classes = Array.from({ length: 6 * n }, (_, j) => plain.explanations[j % n].classIndex);
      const { a, g, x } = await fakeArrays(fake, aug, 'a', classes);
      const t = reference.gradcamTail(a.data, g, a.shape, { outH: H, outW: W, relu: true });
      for (let i = 0; i < n; i++) {
        const want = new Float64Array(H * W);
        copies.forEach(([flip], ai) => {
          for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) want[y * W + xx] += t.map[(ai * n + i) * H * W + y * W + (flip ? W - 1 - xx : xx)] / 6;
        });
        assertClose(`smoothed map ${i}`, r.explanations[i].map!, want, 1e-6);
        const guided = reference.guidedProduct(x.subarray((n + i) * per, (n + i + 1) * per), r.explanations[i].map!, 1, c, H, W, layout);
        assert.deepEqual(Array.from(r.explanations[i].guidedMap!), Array.from(guided));
      }
      assert.deepEqual(augmentBatch(batch).data, aug.data);
    });
  }

  it('every registered method runs, and its outputs are named by the registry', async () => {
    assert.deepEqual([...METHOD_NAMES], ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam', 'gradcam-elementwise',
      'eigencam', 'eigengradcam', 'saliency', 'deconvnet', 'guided-backprop', 'guided-gradcam']);
    for (const m of METHODS) {
      const r = await explain(new FakeAdapter(), batchOf(), { method: m.name, targets: { topK: 2 } });
      assert.equal(r.method, m.name);
      assert.equal(r.explanations.length, 2 * n);
      const names = outputNamesOf(m, false);
      for (const e of r.explanations) {
        assert.equal(e.map !== undefined, names.map !== undefined, `${m.name} map`);
        assert.equal(e.inputGradient !== undefined, names.inputGradient !== undefined, `${m.name} input gradient`);
        assert.equal(e.guidedMap !== undefined, names.guidedMap !== undefined, `${m.name} guided map`);
      }
    }
    assert.deepEqual(outputNamesOf(findMethod('gradcam++')!, true), {
      map: { stem: 'gradcam++', title: 'Grad-CAM++' },
      inputGradient: { stem: 'guided-backprop', title: 'Guided Backpropagation' },
      guidedMap: { stem: 'guided-gradcam++', title: 'Guided Grad-CAM++' },
    });
    assert.equal(outputNamesOf(findMethod('guided-gradcam')!, false).guidedMap?.stem, 'guided-gradcam');
  });

  it('a misspelt option or method is an error with a suggestion, never ignored', async () => {
    const fake = new FakeAdapter();
    await assert.rejects(explain(fake, batchOf(), { methd: 'gradcam' }), (e: Error & { code?: string }) =>
      e.code === 'EUNKNOWNOPTION' && /Unknown option 'methd' in explain options \(did you mean 'method'\?\)/.test(e.message));
    await assert.rejects(explain(fake, batchOf(), { method: 'gradcam+' }),
      /Expected one of .* for method but received 'gradcam\+' of type string \(did you mean 'gradcam\+\+' or 'gradcam'/);
    await assert.rejects(explain(fake, batchOf(), { method: 'saliency', guided: true }), /for guided but received true/);
    await assert.rejects(explain(fake, batchOf(), { method: 'deconvnet', augSmooth: true }), /augSmooth/);
    await assert.rejects(explain(fake, batchOf(), { layer: ['a', 'a'] }), /distinct layer names/);
    await assert.rejects(explain(fake, batchOf(), { gradcamPlusPlus: 'authors' }), /for gradcamPlusPlus/);
  });

  it('a non-finite gradient is ENONFINITE naming the layer, the image and the class', async () => {
    await assert.rejects(explain(new FakeAdapter({ nanImage: 1 }), batchOf(), { targets: 2 }), (e: Error & { code?: string; images?: number[] }) => {
      assert.equal(e.code, 'ENONFINITE');
      assert.deepEqual(e.images, [1]);
      assert.match(e.message, /Non-finite gradient dY\/dA at layer 'a' for image 1 \(class 2\)/);
      return true;
    });
  });

  it('adapter output of the wrong size is a clear internal error', async () => {
    class Short extends FakeAdapter {
      override async begin(b: InputBatch, req: Parameters<FakeAdapter['begin']>[1]) {
        const p = await super.begin(b, req);
        return { ...p, round: async (cl: Int32Array) => ({ ...(await p.round(cl)), layerGrads: [new Float32Array(5)] }) };
      }
    }
    await assert.rejects(explain(new Short(), batchOf(), {}), /the model adapter returned gradients at layer 'a' of length 5, expected 576/);
  });

  it('the batch is copied when explain() is called: changing it before the Promise settles changes nothing', async () => {
    const batch = batchOf();
    const want = await explain(new FakeAdapter(), { ...batch, data: batch.data.slice() }, {});
    const pending = explain(new FakeAdapter(), batch, {});
    batch.data.fill(7);
    const got = await pending;
    assert.deepEqual(Array.from(got.explanations[1].map!), Array.from(want.explanations[1].map!));
  });

  it('softmax rows sum to one and are stable for large logits', () => {
    const p = softmax(Float32Array.from([1000, 1001, 0, 0]), 2);
    assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-6 && p[1] > p[0]);
    assert.ok(Math.abs(p[2] - 0.5) < 1e-7);
  });
});
