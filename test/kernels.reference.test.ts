/**
 * The CAM kernels against numbers: tiny hand-computed examples, pytorch-grad-cam's reference
 * outputs (../shared/reference), layout and composition identities on seeded random data, and
 * the exact error messages — for the TypeScript twins and for every device this machine has.
 */

import assert from 'node:assert/strict';
import { getKernels, kernelInfo } from '../lib/kernels';
import { reference } from '../lib/kernels/reference';
import type { FeatureShape, KernelDevice, KernelsAsync, KernelsSync, Layout } from '../lib/kernels/types';
import { rng } from './helpers/random';
import { hasFile, hasReference, readF32, shapeOf } from './helpers/reference-data';

// ---------------------------------------------------------------------------------------------
// helpers

function randomArray(len: number, rand: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |a-b| <= tol * scale (scale = 1 for absolute comparisons). */
function assertClose(actual: Float32Array, expected: ArrayLike<number>, tol: number, what: string, scale = 1): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol * scale, `${what}: max |diff| ${worst} at ${at} (${actual[at]} vs ${expected[at]}) > ${tol * scale}`);
}

/** Relative to the expected array's own scale (raw stages: weights, lowres_raw). */
function assertRelClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assertClose(actual, expected, tol, what, Math.max(maxAbs(expected), 1e-30));
}

/** [n,k,h,w] -> [n,h,w,k] */
function toNhwc(x: Float32Array, n: number, k: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let c = 0; c < k; c++)
      for (let p = 0; p < h * w; p++) out[(b * h * w + p) * k + c] = x[(b * k + c) * h * w + p];
  return out;
}

function f32(...v: number[]): Float32Array {
  return Float32Array.from(v);
}

// ---------------------------------------------------------------------------------------------
// the implementations under test: the reference itself, then every available device

interface Impl {
  name: string;
  sync: KernelsSync;
  async?: KernelsAsync;
  /** tolerance against the reference on random data (relative to the output's scale) */
  tol: number;
}

function implementations(): Impl[] {
  const list: Impl[] = [{ name: 'reference', sync: reference, tol: 0 }];
  const info = kernelInfo();
  const devices: KernelDevice[] = ['js'];
  if (info.native.loaded) devices.push('cpu');
  if (info.native.loaded && info.native.cuda.available) devices.push('cuda');
  for (const d of devices) {
    const k = getKernels(d);
    list.push({ name: `device ${d}`, sync: k.sync, async: k.async, tol: d === 'js' ? 0 : 2e-6 });
  }
  return list;
}

const IMPLS = implementations();

describe('kernels: hand-computed examples', () => {
  for (const impl of IMPLS) {
    describe(impl.name, () => {
      const K = impl.sync;

      it('resizeBilinear 2x2 -> 4x4, half-pixel centres with edge clamp', () => {
        // x = [[0,1],[2,3]] is linear (x + 2y), so bilinear gives exactly x_src + 2*y_src with
        // src = max((dst+0.5)*2/4 - 0.5, 0) = 0, 0.25, 0.75, 1.25 -> clamped to the last pixel (1).
        const coord = [0, 0.25, 0.75, 1];
        const expected: number[] = [];
        for (const y of coord) for (const x of coord) expected.push(x + 2 * y);
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 2, 2, 4, 4), expected, 1e-7, 'resize');
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 2, 2, 4, 4, { alignCorners: false }), expected, 1e-7, 'resize ac=false');
      });

      it('resizeBilinear 2x2 -> 3x3 with alignCorners', () => {
        // src = dst*(2-1)/(3-1) = 0, 0.5, 1
        const coord = [0, 0.5, 1];
        const expected: number[] = [];
        for (const y of coord) for (const x of coord) expected.push(x + 2 * y);
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 2, 2, 3, 3, { alignCorners: true }), expected, 1e-7, 'resize ac');
        // out == 1 takes the first pixel with alignCorners, the centre (clamped) without
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 2, 2, 1, 1, { alignCorners: true }), [0], 0, 'ac 1x1');
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 2, 2, 1, 1), [1.5], 0, 'half-pixel 1x1');
      });

      it('resizeBilinear down, non-square, 1x1 input, identity, batch', () => {
        // 1x4 -> 1x2: src = (dst+0.5)*2 - 0.5 = 0.5, 2.5: means of neighbours
        assertClose(K.resizeBilinear(f32(0, 1, 2, 3), 1, 1, 4, 1, 2), [0.5, 2.5], 0, 'down');
        assertClose(K.resizeBilinear(f32(7), 1, 1, 1, 3, 2), [7, 7, 7, 7, 7, 7], 0, '1x1 up');
        const r = rng(1);
        const x = randomArray(2 * 3 * 5, r);
        assertClose(K.resizeBilinear(x, 2, 3, 5, 3, 5), x, 0, 'identity');
        // each image of a batch is resized on its own
        const two = K.resizeBilinear(x, 2, 3, 5, 7, 4);
        const second = K.resizeBilinear(x.slice(15), 1, 3, 5, 7, 4);
        assertClose(two.subarray(28), second, 0, 'batch image 1');
      });

      it('minMaxNormalize: (x-min)/(max+1e-7) per image; all-zero and constant stay zero', () => {
        const out = K.minMaxNormalize(f32(1, 3, 5, 0, 0, 0, 2, 2, 2), 3, 3);
        const d = Math.fround(4 + 1e-7);
        assertClose(out, [0, Math.fround(2 / d), Math.fround(4 / d), 0, 0, 0, 0, 0, 0], 0, 'normalize');
        // float32(4 + 1e-7) is 4: as in numpy, the maximum becomes exactly 1 once max(x) > ~1.7
        assert.equal(out[2], 1);
        assertClose(K.minMaxNormalize(f32(-2, -1), 1, 2), [0, Math.fround(1 / Math.fround(1 + 1e-7))], 0, 'negative');
      });

      it('channelMean and channelSums in both layouts', () => {
        // n=1, k=2, h=1, w=2. nchw [1,2 | 3,4]: channel means 1.5, 3.5
        const x = f32(1, 2, 3, 4);
        assertClose(K.channelMean(x, { n: 1, k: 2, h: 1, w: 2, layout: 'nchw' }), [1.5, 3.5], 0, 'mean nchw');
        // nhwc [(1,2), (3,4)]: channel 0 = 1,3; channel 1 = 2,4
        assertClose(K.channelMean(x, { n: 1, k: 2, h: 1, w: 2, layout: 'nhwc' }), [2, 3], 0, 'mean nhwc');
        const g = f32(1, -2, 0.5, 3);
        const a = f32(2, 1, 4, -1);
        const s = K.channelSums(g, a, { n: 1, k: 2, h: 1, w: 2, layout: 'nchw' });
        assertClose(s.g, [-1, 3.5], 0, 'sum g');
        assertClose(s.g2, [5, 9.25], 0, 'sum g2');
        assertClose(s.g3, [-7, 27.125], 0, 'sum g3');
        assertClose(s.a, [3, 3], 0, 'sum a');
        assertClose(s.ga, [0, -1], 0, 'sum ga');
      });

      it('weightedChannelSum and elementwiseChannelSum, with and without ReLU', () => {
        const shape: FeatureShape = { n: 1, k: 2, h: 1, w: 2, layout: 'nchw' };
        // cam = 1*[1,2] - 1*[3,1] = [-2, 1]
        assertClose(K.weightedChannelSum(f32(1, -1), f32(1, 2, 3, 1), shape, false), [-2, 1], 0, 'wsum');
        assertClose(K.weightedChannelSum(f32(1, -1), f32(1, 2, 3, 1), shape, true), [0, 1], 0, 'wsum relu');
        // g = [1,-1 | 2,0.5], A = [1,2 | 3,4]: g*A summed = [1+6, -2+2] = [7, 0]; max(g,0)*A = [7, 2]
        const g = f32(1, -1, 2, 0.5);
        const a = f32(1, 2, 3, 4);
        assertClose(K.elementwiseChannelSum(g, a, shape, 'grad-times-act', false), [7, 0], 0, 'hires');
        assertClose(K.elementwiseChannelSum(g, a, shape, 'relu-grad-times-act', false), [7, 2], 0, 'layercam');
        const neg = f32(-1, -1, -1, -1);
        assertClose(K.elementwiseChannelSum(neg, a, shape, 'grad-times-act', true), [0, 0], 0, 'hires relu');
        // batch of 2 uses each image's own weights
        const two: FeatureShape = { n: 2, k: 1, h: 1, w: 2, layout: 'nhwc' };
        assertClose(K.weightedChannelSum(f32(2, 3), f32(1, 2, 1, 2), two, false), [2, 4, 3, 6], 0, 'batch');
      });

      it('guidedProduct broadcasts the map over channels in both layouts', () => {
        // n=1, c=2, H=1, W=2; cam = [10, 100]
        const cam = f32(10, 100);
        assertClose(K.guidedProduct(f32(1, 2, 3, 4), cam, 1, 2, 1, 2, 'nchw'), [10, 200, 30, 400], 0, 'nchw');
        assertClose(K.guidedProduct(f32(1, 2, 3, 4), cam, 1, 2, 1, 2, 'nhwc'), [10, 20, 300, 400], 0, 'nhwc');
      });

      it('gradcamTail on a 1x2x2x2 example', () => {
        // g channel means: [1, 0.25] ; A ch0 = [1,2,3,4], ch1 = [4,0,0,-4]
        // raw = 1*A0 + 0.25*A1 = [2, 2, 3, 3]; relu same; normalized: [0,0,1,1]/(1+1e-7)
        const g = f32(1, 1, 1, 1, 1, 0, 0, 0);
        const a = f32(1, 2, 3, 4, 4, 0, 0, -4);
        const r = K.gradcamTail(a, g, { n: 1, k: 2, h: 2, w: 2, layout: 'nchw' }, { outH: 2, outW: 4 });
        assertClose(r.weights, [1, 0.25], 0, 'weights');
        assertClose(r.lowresRaw, [2, 2, 3, 3], 0, 'raw');
        const one = Math.fround(1 / Math.fround(1 + 1e-7));
        assertClose(r.lowres, [0, 0, one, one], 0, 'lowres');
        // rows resized 2 -> 2 (identity), columns constant; then normalized again
        const again = Math.fround(one / Math.fround(one + 1e-7));
        assertClose(r.map, [0, 0, 0, 0, again, again, again, again], 0, 'map');
        // without ReLU a negative map is normalized from its minimum
        const r2 = K.gradcamTail(a, g.map((v) => -v), { n: 1, k: 2, h: 2, w: 2, layout: 'nchw' }, { outH: 2, outW: 2, relu: false });
        assertClose(r2.lowresRaw, [-2, -2, -3, -3], 0, 'raw neg');
        assertClose(r2.lowres, [one, one, 0, 0], 0, 'lowres no relu');
        const r3 = K.gradcamTail(a, g.map((v) => -v), { n: 1, k: 2, h: 2, w: 2, layout: 'nchw' }, { outH: 2, outW: 2 });
        assertClose(r3.lowres, [0, 0, 0, 0], 0, 'all-negative map -> zero');
        assertClose(r3.map, [0, 0, 0, 0], 0, 'zero map stays zero');
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('kernels: identities on seeded random data', () => {
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [2, 3, 5, 7],
    [3, 64, 7, 7],
    [1, 16, 14, 9],
    [5, 2, 1, 4],
  ];

  it('the reference gives the same numbers in nchw and nhwc', () => {
    const r = rng(42);
    for (const [n, k, h, w] of shapes) {
      const g = randomArray(n * k * h * w, r);
      const a = randomArray(n * k * h * w, r, 0, 4);
      const wts = randomArray(n * k, r);
      const c: FeatureShape = { n, k, h, w, layout: 'nchw' };
      const l: FeatureShape = { ...c, layout: 'nhwc' };
      const gl = toNhwc(g, n, k, h, w);
      const al = toNhwc(a, n, k, h, w);
      const id = `${n}x${k}x${h}x${w}`;
      assertClose(reference.channelMean(gl, l), reference.channelMean(g, c), 0, `mean ${id}`);
      const s1 = reference.channelSums(g, a, c);
      const s2 = reference.channelSums(gl, al, l);
      for (const key of ['g', 'g2', 'g3', 'a', 'ga'] as const) assertClose(s2[key], s1[key], 0, `sums.${key} ${id}`);
      assertClose(reference.weightedChannelSum(wts, al, l, true), reference.weightedChannelSum(wts, a, c, true), 0, `wsum ${id}`);
      for (const op of ['grad-times-act', 'relu-grad-times-act'] as const) {
        assertClose(reference.elementwiseChannelSum(gl, al, l, op, false), reference.elementwiseChannelSum(g, a, c, op, false), 0, `${op} ${id}`);
      }
      const cam = randomArray(n * h * w, r);
      assertClose(
        reference.guidedProduct(gl, cam, n, k, h, w, 'nhwc'),
        toNhwc(reference.guidedProduct(g, cam, n, k, h, w, 'nchw'), n, k, h, w),
        0,
        `guided ${id}`,
      );
      const t1 = reference.gradcamTail(a, g, c, { outH: 11, outW: 6 });
      const t2 = reference.gradcamTail(al, gl, l, { outH: 11, outW: 6 });
      assertClose(t2.map, t1.map, 0, `tail ${id}`);
    }
  });

  it('gradcamTail equals its steps run one by one, and channelMean equals sums.g / (h*w)', () => {
    const r = rng(7);
    for (const [n, k, h, w] of shapes) {
      for (const layout of ['nchw', 'nhwc'] as Layout[]) {
        const shape: FeatureShape = { n, k, h, w, layout };
        const g = randomArray(n * k * h * w, r);
        const a = randomArray(n * k * h * w, r, 0, 3);
        for (const alignCorners of [false, true]) {
          const t = reference.gradcamTail(a, g, shape, { outH: 9, outW: 13, alignCorners });
          const weights = reference.channelMean(g, shape);
          const raw = reference.weightedChannelSum(weights, a, shape, false);
          const lowres = reference.minMaxNormalize(reference.weightedChannelSum(weights, a, shape, true), n, h * w);
          const map = reference.minMaxNormalize(reference.resizeBilinear(lowres, n, h, w, 9, 13, { alignCorners }), n, 9 * 13);
          assertClose(t.weights, weights, 0, 'weights');
          assertClose(t.lowresRaw, raw, 0, 'raw');
          assertClose(t.lowres, lowres, 0, 'lowres');
          assertClose(t.map, map, 0, 'map');
        }
        const sums = reference.channelSums(g, a, shape);
        assertClose(reference.channelMean(g, shape), Array.from(sums.g, (v) => v / (h * w)), 1e-6, 'mean', maxAbs(sums.g) / (h * w) + 1e-30);
      }
    }
  });

  for (const impl of IMPLS.filter((i) => i.name !== 'reference')) {
    it(`${impl.name} equals the reference on random shapes (sync${impl.async ? ' and async' : ''})`, async () => {
      const r = rng(2024);
      const cases: [number, number, number, number][] = [...shapes, [2, 2048, 7, 7], [7, 5, 28, 28]];
      for (const [n, k, h, w] of cases) {
        for (const layout of ['nchw', 'nhwc'] as Layout[]) {
          const shape: FeatureShape = { n, k, h, w, layout };
          const len = n * k * h * w;
          const g = randomArray(len, r);
          const a = randomArray(len, r, 0, 6);
          const wts = randomArray(n * k, r);
          const id = `${n}x${k}x${h}x${w} ${layout}`;
          const check = (actual: Float32Array, expected: Float32Array, what: string): void =>
            assertClose(actual, expected, impl.tol, `${what} ${id}`, Math.max(maxAbs(expected), 1e-30));
          check(impl.sync.channelMean(g, shape), reference.channelMean(g, shape), 'channelMean');
          const s = impl.sync.channelSums(g, a, shape);
          const rs = reference.channelSums(g, a, shape);
          for (const key of ['g', 'g2', 'g3', 'a', 'ga'] as const) check(s[key], rs[key], `channelSums.${key}`);
          check(impl.sync.weightedChannelSum(wts, a, shape, true), reference.weightedChannelSum(wts, a, shape, true), 'wsum');
          check(
            impl.sync.elementwiseChannelSum(g, a, shape, 'relu-grad-times-act', false),
            reference.elementwiseChannelSum(g, a, shape, 'relu-grad-times-act', false),
            'elementwise',
          );
          const cam = randomArray(n * h * w, r);
          check(impl.sync.guidedProduct(g, cam, n, k, h, w, layout), reference.guidedProduct(g, cam, n, k, h, w, layout), 'guided');
          check(impl.sync.resizeBilinear(cam, n, h, w, 17, 5), reference.resizeBilinear(cam, n, h, w, 17, 5), 'resize');
          check(impl.sync.minMaxNormalize(cam, n, h * w), reference.minMaxNormalize(cam, n, h * w), 'normalize');
          const t = impl.sync.gradcamTail(a, g, shape, { outH: 32, outW: 24 });
          const rt = reference.gradcamTail(a, g, shape, { outH: 32, outW: 24 });
          check(t.weights, rt.weights, 'tail.weights');
          check(t.lowresRaw, rt.lowresRaw, 'tail.lowresRaw');
          // normalized maps: absolute, with room for a ReLU/min flip of a value near zero
          assertClose(t.map, rt.map, impl.tol === 0 ? 0 : 1e-5, `tail.map ${id}`);
          if (impl.async) {
            const [am, at] = await Promise.all([
              impl.async.channelMean(g, shape),
              impl.async.gradcamTail(a, g, shape, { outH: 32, outW: 24 }),
            ]);
            check(am, reference.channelMean(g, shape), 'async channelMean');
            assertClose(at.map, rt.map, impl.tol === 0 ? 0 : 1e-5, `async tail.map ${id}`);
          }
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

interface Case {
  model: string;
  batch: string;
  cls: string;
  /** has the gradcam.hook.* stages (b1 only) */
  hooks: boolean;
}

const CASES: Case[] = [
  { model: 'mobilenet_v2', batch: 'b1', cls: 'argmax', hooks: true },
  { model: 'mobilenet_v2', batch: 'b1', cls: 'class3', hooks: true },
  { model: 'smallvgg', batch: 'b1', cls: 'argmax', hooks: true },
  { model: 'smallvgg', batch: 'b1', cls: 'class3', hooks: true },
  { model: 'smallvgg', batch: 'b4', cls: 'argmax', hooks: false },
  { model: 'smallvgg', batch: 'b4', cls: 'class3', hooks: false },
];

describe('kernels: pytorch-grad-cam reference outputs (../shared/reference)', function () {
  before(function () {
    if (!hasReference()) this.skip();
  });

  for (const impl of IMPLS) {
    describe(impl.name, () => {
      for (const c of CASES) {
        const dir = `outputs/${c.model}/${c.batch}`;
        const out = `${dir}/${c.cls}`;

        it(`${c.model} ${c.batch} ${c.cls}: gradcamTail(activations, grads) = gradcam.lib.{weights, lowres_raw, final}`, async function () {
          if (!hasReference() || !hasFile(`${out}/grads.bin`)) this.skip();
          const [n, k, h, w] = shapeOf(`${dir}/activations.bin`);
          const A = readF32(`${dir}/activations.bin`);
          const G = readF32(`${out}/grads.bin`);
          const [, H, W] = shapeOf(`${out}/gradcam.lib.final.bin`);
          const check = (r: ReturnType<KernelsSync['gradcamTail']>, how: string): void => {
            if (hasFile(`${out}/gradcam.lib.weights.bin`)) {
              assertRelClose(r.weights, readF32(`${out}/gradcam.lib.weights.bin`), 1e-5, `${how} weights`);
            }
            assertRelClose(r.lowresRaw, readF32(`${out}/gradcam.lib.lowres_raw.bin`), 1e-5, `${how} lowres_raw`);
            if (hasFile(`${out}/gradcam.hook.lowres_norm.bin`)) {
              assertClose(r.lowres, readF32(`${out}/gradcam.hook.lowres_norm.bin`), 1e-5, `${how} lowres_norm`);
            }
            assertClose(r.map, readF32(`${out}/gradcam.lib.final.bin`), 1e-5, `${how} final`);
          };
          const opts = { outH: H, outW: W };
          check(impl.sync.gradcamTail(A, G, { n, k, h, w, layout: 'nchw' }, opts), 'nchw');
          // the same numbers from tfjs-style NHWC tensors
          check(impl.sync.gradcamTail(toNhwc(A, n, k, h, w), toNhwc(G, n, k, h, w), { n, k, h, w, layout: 'nhwc' }, opts), 'nhwc');
          if (impl.async) check(await impl.async.gradcamTail(A, G, { n, k, h, w, layout: 'nchw' }, opts), 'async nchw');
        });

        it(`${c.model} ${c.batch} ${c.cls}: guidedProduct(guided_backprop, final) = guided_gradcam.lib`, function () {
          if (!hasReference() || !hasFile(`${out}/guided_backprop.lib.bin`) || !hasFile(`${out}/guided_gradcam.lib.bin`)) this.skip();
          const [n, ch, H, W] = shapeOf(`${out}/guided_gradcam.lib.bin`);
          const gb = readF32(`${out}/guided_backprop.lib.bin`);
          const cam = readF32(`${out}/gradcam.lib.final.bin`);
          const expected = readF32(`${out}/guided_gradcam.lib.bin`);
          const tol = 1e-6 * maxAbs(expected);
          assertClose(impl.sync.guidedProduct(gb, cam, n, ch, H, W, 'nchw'), expected, tol, 'guided nchw');
          assertClose(
            impl.sync.guidedProduct(toNhwc(gb, n, ch, H, W), cam, n, ch, H, W, 'nhwc'),
            toNhwc(expected, n, ch, H, W),
            tol,
            'guided nhwc',
          );
        });
        if (!c.hooks) continue;
        it(`${c.model} ${c.batch} ${c.cls}: resizeBilinear(gradcam.hook.lowres_norm) = gradcam.lib.up_cv2`, function () {
          if (!hasReference() || !hasFile(`${out}/gradcam.hook.lowres_norm.bin`)) this.skip();
          const [n, h, w] = shapeOf(`${out}/gradcam.hook.lowres_norm.bin`);
          const [, H, W] = shapeOf(`${out}/gradcam.lib.up_cv2.bin`);
          const up = impl.sync.resizeBilinear(readF32(`${out}/gradcam.hook.lowres_norm.bin`), n, h, w, H, W);
          assertClose(up, readF32(`${out}/gradcam.lib.up_cv2.bin`), 1e-5, 'up_cv2');
          // and align_corners=True is the other convention (torch ac1), far from cv2
          if (hasFile(`${out}/gradcam.hook.final_torch_bilinear_ac1.bin`)) {
            const ac = impl.sync.minMaxNormalize(
              impl.sync.resizeBilinear(readF32(`${out}/gradcam.hook.lowres_norm.bin`), n, h, w, H, W, { alignCorners: true }),
              n,
              H * W,
            );
            assertClose(ac, readF32(`${out}/gradcam.hook.final_torch_bilinear_ac1.bin`), 1e-5, 'ac1');
          }
        });

      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('kernels: exact error messages', () => {
  const shape: FeatureShape = { n: 1, k: 2, h: 3, w: 4, layout: 'nchw' };
  const ok = new Float32Array(24);

  /** [call, error class, message] for one kernel set */
  function errorCases(K: KernelsSync | KernelsAsync): [() => unknown, typeof TypeError | typeof RangeError, string][] {
    const S = K as unknown as Record<string, (...a: unknown[]) => unknown>;
    return [
      [() => S.channelMean(new Float32Array(10), shape), RangeError, 'Expected Float32Array of length 24 for x but received Float32Array(10)'],
      [() => S.channelMean(new Float64Array(24), shape), TypeError, 'Expected Float32Array for x but received Float64Array(24)'],
      [() => S.channelMean([1, 2], shape), TypeError, 'Expected Float32Array for x but received [1,2]'],
      [() => S.channelMean(new Array(24).fill(0), shape), TypeError, 'Expected Float32Array for x but received array of length 24'],
      [() => S.channelMean(ok, undefined), TypeError, 'Expected object for shape but received undefined'],
      [() => S.channelMean(ok, { ...shape, n: 0 }), RangeError, 'Expected positive integer for shape.n but received 0 of type number'],
      [() => S.channelMean(ok, { ...shape, k: 1.5 }), RangeError, 'Expected positive integer for shape.k but received 1.5 of type number'],
      [() => S.channelMean(ok, { ...shape, h: NaN }), RangeError, 'Expected positive integer for shape.h but received NaN of type number'],
      [() => S.channelMean(ok, { ...shape, w: -4 }), RangeError, 'Expected positive integer for shape.w but received -4 of type number'],
      [() => S.channelMean(ok, { ...shape, w: '4' }), TypeError, "Expected positive integer for shape.w but received '4' of type string"],
      [() => S.channelMean(ok, { ...shape, layout: 'NCHW' }), RangeError, "Expected one of 'nchw', 'nhwc' for shape.layout but received 'NCHW' of type string"],
      [
        () => S.channelMean(ok, { n: 65536, k: 65536, h: 1, w: 1, layout: 'nchw' }),
        RangeError,
        'Expected at most 2147483647 elements for x but received 4294967296 of type number',
      ],
      [() => S.channelSums(ok, new Float32Array(23), shape), RangeError, 'Expected Float32Array of length 24 for a but received Float32Array(23)'],
      [() => S.channelSums(null, ok, shape), TypeError, 'Expected Float32Array for g but received null'],
      [() => S.weightedChannelSum(new Float32Array(3), ok, shape, true), RangeError, 'Expected Float32Array of length 2 for weights but received Float32Array(3)'],
      [() => S.weightedChannelSum(new Float32Array(2), ok, shape, 1), TypeError, 'Expected boolean for relu but received 1 of type number'],
      [
        () => S.elementwiseChannelSum(ok, ok, shape, 'times', false),
        RangeError,
        "Expected one of 'grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act' for op but received 'times' of type string",
      ],
      [() => S.resizeBilinear(ok, 1, 4, 6, 0, 224), RangeError, 'Expected positive integer for outH but received 0 of type number'],
      [() => S.resizeBilinear(ok, 1, 4, 6, 224, undefined), TypeError, 'Expected positive integer for outW but received undefined'],
      [() => S.resizeBilinear(ok, 2, 4, 6, 224, 224), RangeError, 'Expected Float32Array of length 48 for x but received Float32Array(24)'],
      [() => S.resizeBilinear(ok, 1, 4, 6, 8, 8, { alignCorners: 'yes' }), TypeError, "Expected boolean for options.alignCorners but received 'yes' of type string"],
      [() => S.resizeBilinear(ok, 1, 4, 6, 65536, 65536), RangeError, 'Expected at most 2147483647 elements for out but received 4294967296 of type number'],
      [() => S.minMaxNormalize(ok, 0, 24), RangeError, 'Expected positive integer for n but received 0 of type number'],
      [() => S.minMaxNormalize(ok, 2, 24), RangeError, 'Expected Float32Array of length 48 for x but received Float32Array(24)'],
      [() => S.guidedProduct(ok, new Float32Array(12), 1, 2, 3, 4, 'chw'), RangeError, "Expected one of 'nchw', 'nhwc' for layout but received 'chw' of type string"],
      [() => S.guidedProduct(ok, new Float32Array(11), 1, 2, 3, 4, 'nhwc'), RangeError, 'Expected Float32Array of length 12 for cam but received Float32Array(11)'],
      [() => S.guidedProduct(new Float32Array(25), new Float32Array(12), 1, 2, 3, 4, 'nhwc'), RangeError, 'Expected Float32Array of length 24 for guided but received Float32Array(25)'],
      [() => S.guidedProduct(ok, new Float32Array(12), 1, 2, 3, Infinity, 'nhwc'), RangeError, 'Expected positive integer for W but received Infinity of type number'],
      [() => S.gradcamTail(ok, ok, shape, undefined), TypeError, 'Expected object for options but received undefined'],
      [() => S.gradcamTail(ok, ok, shape, { outH: 224 }), TypeError, 'Expected positive integer for options.outW but received undefined'],
      [() => S.gradcamTail(ok, new Int8Array(24), shape, { outH: 8, outW: 8 }), TypeError, 'Expected Float32Array for g but received Int8Array(24)'],
      [() => S.gradcamTail(ok, ok, { ...shape, n: 2 }, { outH: 8, outW: 8 }), RangeError, 'Expected Float32Array of length 48 for a but received Float32Array(24)'],
      [() => S.gradcamTail(ok, ok, shape, { outH: 8, outW: 8, relu: 'no' }), TypeError, "Expected boolean for options.relu but received 'no' of type string"],
    ];
  }

  for (const impl of IMPLS.filter((i) => i.name !== 'reference')) {
    it(`${impl.name}: every bad argument throws a TypeError/RangeError naming it`, () => {
      for (const [call, Ctor, message] of errorCases(impl.sync)) {
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof Ctor, `${message}: got ${String(e)}`);
          assert.equal((e as Error).message, message);
          return true;
        });
      }
    });

    if (impl.async) {
      it(`${impl.name}: the async variants reject with the same errors`, async () => {
        for (const [call, Ctor, message] of errorCases(impl.async!)) {
          const p = call();
          assert.ok(p instanceof Promise, `${message}: the async variant must return a Promise, not throw`);
          await assert.rejects(p as Promise<unknown>, (e: unknown) => {
            assert.ok(e instanceof Ctor, `${message}: got ${String(e)}`);
            assert.equal((e as Error).message, message);
            return true;
          });
        }
      });
    }
  }
});
