/**
 * camTail, the generalized CAM tail over R rounds: the native CPU kernel against its TypeScript
 * twin bit for bit on seeded random shapes for every combine kind; each round against today's
 * single kernels (gradcamTail, weightedChannelSum, elementwiseChannelSum, minMaxNormalize,
 * resizeBilinear, guidedProduct); the weightings and element-wise ops against a float64
 * computation written here; the argument checks (TS and C++ give the same messages); the
 * Promise variants; CUDA against CPU (skipped without a GPU); and pytorch-grad-cam's
 * Grad-CAM++, XGrad-CAM, HiResCAM and LayerCAM numbers in ../shared/reference.
 */
import assert from 'node:assert/strict';
import * as os from 'node:os';

import { getKernels } from '../lib/kernels';
import { type NativeAddon, loadAddon } from '../lib/kernels/addon';
import { nativeKernels, nativeStatus } from '../lib/kernels/native';
import { reference } from '../lib/kernels/reference';
import type {
  CamCombine,
  CamGuide,
  CamTailOptions,
  CamTailResult,
  ChannelWeighting,
  ElementwiseOp,
  FeatureShape,
  KernelsSync,
  Layout,
} from '../lib/kernels/types';
import { validate } from '../lib/kernels/validate';
import { hasFile, hasReference, readF32, shapeOf } from './helpers/reference-data';
import { rng } from './helpers/random';

const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const oneOf = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)];

function randomArray(r: () => number, length: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** Bit-for-bit equality (NaN equals NaN), naming the first difference. */
function assertSame(got: Float32Array | undefined, want: Float32Array | undefined, what: string): void {
  assert.ok(got instanceof Float32Array && want instanceof Float32Array, `${what}: missing`);
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      assert.fail(`${what}: [${i}] ${got[i]} vs ${want[i]}`);
    }
  }
}

/** |got - want| <= rtol*|want| + atol*max|want|. */
function assertClose(got: Float32Array, want: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const tol = rtol * Math.abs(want[i]) + atol * Math.max(scale, 1e-30);
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}: [${i}] ${got[i]} vs ${want[i]} (tolerance ${tol})`);
  }
}

const KEYS = ['weights', 'lowresRaw', 'lowres', 'map', 'guided'] as const;

function assertSameResult(got: CamTailResult, want: CamTailResult, what: string): void {
  assert.equal(got.rounds, want.rounds, `${what}: rounds`);
  for (const key of KEYS) {
    assert.equal(got[key] === undefined, want[key] === undefined, `${what}: ${key} present`);
    if (want[key]) assertSame(got[key], want[key], `${what}.${key}`);
  }
}

const CORES = os.cpus().length;
const WEIGHTINGS: readonly ChannelWeighting[] = ['grad-mean', 'grad-pp', 'grad-pp-normalized', 'grad-act-ratio'];
const OPS: readonly ElementwiseOp[] = ['grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act'];
const KINDS: readonly CamCombine['kind'][] = ['weights', 'given-weights', 'elementwise', 'given-lowres'];

interface Case {
  a: Float32Array;
  grads: Float32Array[] | null;
  shape: FeatureShape;
  combine: CamCombine;
  options: CamTailOptions;
  guide?: CamGuide;
  text: string;
}

/**
 * `count` random cases of one kind: the corner cases first (1x1 maps, K = 1, non-square, a batch
 * larger than the core count), then random shapes; R = 1..4, both layouts, resize up and down,
 * relu and alignCorners both ways, half of them with a guide in either layout. Gradients have
 * exact zeros (Grad-CAM++'s a_ij = 0 where G == 0) and activations either sign.
 */
function cases(kind: CamCombine['kind'], seed: number, count: number): Case[] {
  const r = rng(seed);
  const fixed: Omit<FeatureShape, 'layout'>[] = [
    { n: 1, k: 1, h: 1, w: 1 },
    { n: 3, k: 5, h: 1, w: 1 },
    { n: 1, k: 1, h: 7, w: 5 },
    { n: 2, k: 512, h: 7, w: 7 },
    { n: CORES * 2 + 3, k: 9, h: 4, w: 9 },
    { n: 2, k: 3, h: 28, w: 13 },
  ];
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const base = i < fixed.length * 2 ? fixed[i >> 1] : null;
    const shape: FeatureShape = {
      n: base?.n ?? (r() < 0.15 ? int(r, CORES + 1, CORES * 2 + 2) : int(r, 1, 3)),
      k: base?.k ?? oneOf(r, [1, 2, 3, int(r, 1, 70)]),
      h: base?.h ?? int(r, 1, 14),
      w: base?.w ?? int(r, 1, 14),
      layout: i % 2 ? 'nhwc' : 'nchw',
    };
    const { n, k, h, w } = shape;
    const rounds = 1 + (i % 4);
    const len = n * k * h * w;
    const withZeros = (x: Float32Array): Float32Array => {
      for (let p = 0; p < x.length; p++) if (r() < 0.1) x[p] = 0;
      return x;
    };
    const a = randomArray(r, len, r() < 0.5 ? 0 : -1, 3);
    const grads = Array.from({ length: rounds }, () => withZeros(randomArray(r, len)));
    let combine: CamCombine;
    if (kind === 'weights') {
      combine = { kind, weighting: WEIGHTINGS[i % 4], ...(i % 3 === 0 ? {} : { eps: oneOf(r, [0, 1e-7, 1e-6, 1e-3]) }) };
    } else if (kind === 'given-weights') {
      combine = { kind, weights: Array.from({ length: rounds }, () => randomArray(r, n * k)) };
    } else if (kind === 'elementwise') {
      combine = { kind, op: OPS[i % 3] };
    } else {
      combine = { kind, lowres: Array.from({ length: rounds }, () => randomArray(r, n * h * w, -2, 2)) };
    }
    const options: CamTailOptions = {
      outH: oneOf(r, [1, 2, int(r, 1, 40), 64]),
      outW: oneOf(r, [1, 5, int(r, 1, 40)]),
      ...(i % 3 === 0 ? {} : { relu: i % 3 === 1 }),
      ...(i % 5 < 3 ? {} : { alignCorners: i % 5 === 4 }),
    };
    let guide: CamGuide | undefined;
    if (r() < 0.5) {
      const c = oneOf(r, [1, 3, 4]);
      const layout: Layout = r() < 0.5 ? 'nchw' : 'nhwc';
      guide = { c, layout, inputGrads: Array.from({ length: rounds }, () => randomArray(r, n * c * options.outH * options.outW)) };
    }
    const text = `${kind} n=${n} k=${k} h=${h} w=${w} ${shape.layout} R=${rounds} ${JSON.stringify({ ...combine, weights: undefined, lowres: undefined })} ${JSON.stringify(options)}${guide ? ` guide c=${guide.c} ${guide.layout}` : ''}`;
    const usesGrads = kind === 'weights' || kind === 'elementwise';
    out.push({ a, grads: usesGrads ? grads : null, shape, combine, options, guide, text });
  }
  return out;
}

const run = (K: KernelsSync, c: Case): CamTailResult => K.camTail(c.a, c.grads, c.shape, c.combine, c.options, c.guide);

/** One round's part of a [R * per] result. */
const part = (x: Float32Array, r: number, per: number): Float32Array => x.subarray(r * per, (r + 1) * per);

/** Round r through today's single kernels: the map's later steps, as gradcamTail does them. */
function singleKernels(K: KernelsSync, c: Case, r: number): Partial<CamTailResult> {
  const { n, k, h, w } = c.shape;
  const { outH, outW } = c.options;
  let weights: Float32Array | undefined;
  let raw: Float32Array;
  const combine = c.combine;
  if (combine.kind === 'weights' && combine.weighting === 'grad-mean') {
    const t = K.gradcamTail(c.a, c.grads![r], c.shape, c.options);
    weights = t.weights;
    raw = t.lowresRaw;
  } else if (combine.kind === 'given-weights') {
    weights = combine.weights[r];
    raw = K.weightedChannelSum(weights, c.a, c.shape, false);
  } else if (combine.kind === 'elementwise') {
    raw = K.elementwiseChannelSum(c.grads![r], c.a, c.shape, combine.op, false);
  } else if (combine.kind === 'given-lowres') {
    raw = combine.lowres[r];
  } else {
    throw new Error('no single-kernel path for this weighting');
  }
  const relu = c.options.relu !== false;
  const lowres = K.minMaxNormalize(raw.map((v) => (relu && v < 0 ? 0 : v)), n, h * w);
  const map = K.minMaxNormalize(K.resizeBilinear(lowres, n, h, w, outH, outW, { alignCorners: c.options.alignCorners === true }), n, outH * outW);
  const guided = c.guide ? K.guidedProduct(c.guide.inputGrads[r], map, n, c.guide.c, outH, outW, c.guide.layout) : undefined;
  void k;
  return { weights, lowresRaw: raw, lowres, map, guided };
}

/** The weights of one channel in float64, straight from the formulas of types.ts. */
function weights64(G: number[], A: number[], weighting: ChannelWeighting, eps: number): number {
  const sA = A.reduce((s, v) => s + v, 0);
  if (weighting === 'grad-mean') return G.reduce((s, v) => s + v, 0) / G.length;
  if (weighting === 'grad-act-ratio') return G.reduce((s, g, p) => s + g * A[p], 0) / (sA + eps);
  const alpha = G.map((g) => (g === 0 ? 0 : (g * g) / (2 * g * g + sA * g * g * g + eps)));
  const alphaSum = alpha.reduce((s, v) => s + v, 0);
  const normalized = weighting === 'grad-pp-normalized' && alphaSum !== 0 ? alpha.map((v) => v / alphaSum) : alpha;
  return G.reduce((s, g, p) => s + Math.max(g, 0) * normalized[p], 0);
}

describe('camTail (the generalized CAM tail over R rounds)', function () {
  let addon: NativeAddon;
  let cpu: KernelsSync;

  before(function () {
    const st = nativeStatus();
    if (!st.loaded && process.env.GRADCAM_DISABLE_NATIVE === '1') this.skip();
    assert.ok(st.loaded, `native addon not loaded: ${st.error}`);
    addon = loadAddon().addon!;
    cpu = nativeKernels('cpu').sync;
  });

  describe('native CPU equals the TypeScript twin, bit for bit', function () {
    KINDS.forEach((kind, ki) => {
      it(`${kind}: 110 random cases (R = 1..4, both layouts, guided or not)`, function () {
        for (const c of cases(kind, 700 + ki, 110)) {
          validate.camTail(c.a, c.grads, c.shape, c.combine, c.options, c.guide);
          assertSameResult(run(cpu, c), run(reference, c), c.text);
        }
      });
    });
  });

  describe('every round equals the single kernels run on that round alone', function () {
    for (const kind of KINDS) {
      it(`${kind}${kind === 'weights' ? ' (grad-mean: gradcamTail)' : ''}: 40 cases, TS and native`, function () {
        const list = cases(kind, 800 + KINDS.indexOf(kind), 160)
          .filter((c) => c.combine.kind !== 'weights' || c.combine.weighting === 'grad-mean')
          .slice(0, 40);
        assert.equal(list.length, 40);
        for (const c of list) {
          for (const [name, K] of [['ts', reference], ['cpu', cpu]] as const) {
            const t = run(K, c);
            const { n, k, h, w } = c.shape;
            const per = { weights: n * k, lowresRaw: n * h * w, lowres: n * h * w, map: n * c.options.outH * c.options.outW,
              guided: n * (c.guide?.c ?? 0) * c.options.outH * c.options.outW };
            for (let r = 0; r < t.rounds; r++) {
              const want = singleKernels(K, c, r);
              for (const key of KEYS) {
                if (want[key]) assertSame(part(t[key]!, r, per[key]), want[key], `${name} ${c.text} round ${r} ${key}`);
                else assert.equal(t[key], undefined, `${name} ${c.text}: no ${key}`);
              }
            }
          }
        }
      });
    }
  });

  describe('the weightings and element-wise ops against float64 formulas', function () {
    it('channel weights: every weighting, eps 0 / 1e-7 / 1e-6 / 0.1, both layouts', function () {
      const r = rng(900);
      for (let i = 0; i < 48; i++) {
        const shape: FeatureShape = { n: int(r, 1, 2), k: int(r, 1, 4), h: int(r, 1, 4), w: int(r, 1, 5), layout: i % 2 ? 'nhwc' : 'nchw' };
        const { n, k, h, w } = shape;
        const a = randomArray(r, n * k * h * w, i % 3 === 0 ? -1 : 0, 2);
        const g = randomArray(r, a.length);
        for (let p = 0; p < g.length; p++) if (r() < 0.15) g[p] = 0;
        const weighting = WEIGHTINGS[i % 4];
        const eps = [0, 1e-7, 1e-6, 0.1][(i >> 2) % 4];
        const at = (b: number, ch: number, p: number): number => (shape.layout === 'nchw' ? (b * k + ch) * h * w + p : (b * h * w + p) * k + ch);
        const want: number[] = [];
        for (let b = 0; b < n; b++) {
          for (let ch = 0; ch < k; ch++) {
            const G: number[] = [];
            const A: number[] = [];
            for (let p = 0; p < h * w; p++) {
              G.push(g[at(b, ch, p)]);
              A.push(a[at(b, ch, p)]);
            }
            want.push(weights64(G, A, weighting, eps));
          }
        }
        for (const [name, K] of [['ts', reference], ['cpu', cpu]] as const) {
          const t = K.camTail(a, [g], shape, { kind: 'weights', weighting, eps }, { outH: 2, outW: 2 });
          // a_ij's denominator can come near 0 when S_A < 0, hence a relative tolerance per value
          assertClose(t.weights!, want, `${name} ${weighting} eps=${eps} ${JSON.stringify(shape)}`, 1e-5, 1e-7);
        }
      }
    });

    it('element-wise ops: g*A, max(g,0)*A, max(g*A,0)', function () {
      const r = rng(901);
      const f = { 'grad-times-act': (g: number, a: number) => g * a, 'relu-grad-times-act': (g: number, a: number) => Math.max(g, 0) * a,
        'relu-of-grad-times-act': (g: number, a: number) => Math.max(g * a, 0) };
      for (let i = 0; i < 30; i++) {
        const shape: FeatureShape = { n: int(r, 1, 2), k: int(r, 1, 6), h: int(r, 1, 4), w: int(r, 1, 4), layout: i % 2 ? 'nhwc' : 'nchw' };
        const { n, k, h, w } = shape;
        const a = randomArray(r, n * k * h * w, -1, 2);
        const g = randomArray(r, a.length);
        const op = OPS[i % 3];
        const want = new Float64Array(n * h * w);
        for (let b = 0; b < n; b++) {
          for (let ch = 0; ch < k; ch++) {
            for (let p = 0; p < h * w; p++) {
              const idx = shape.layout === 'nchw' ? (b * k + ch) * h * w + p : (b * h * w + p) * k + ch;
              want[b * h * w + p] += f[op](g[idx], a[idx]);
            }
          }
        }
        for (const [name, K] of [['ts', reference], ['cpu', cpu]] as const) {
          const t = K.camTail(a, [g], shape, { kind: 'elementwise', op }, { outH: 3, outW: 3, relu: false });
          assertClose(t.lowresRaw, want, `${name} ${op} ${JSON.stringify(shape)}`, 1e-6, 1e-7);
          assertClose(K.elementwiseChannelSum(g, a, shape, op, false), want, `${name} elementwiseChannelSum ${op}`, 1e-6, 1e-7);
        }
      }
    });

    it('eps defaults to 1e-7', function () {
      for (const c of cases('weights', 902, 8)) {
        if (c.combine.kind !== 'weights') continue;
        const t1 = reference.camTail(c.a, c.grads, c.shape, { kind: 'weights', weighting: 'grad-pp' }, c.options);
        const t2 = cpu.camTail(c.a, c.grads, c.shape, { kind: 'weights', weighting: 'grad-pp', eps: 1e-7 }, c.options);
        assertSame(t1.weights, t2.weights, c.text);
      }
    });
  });

  describe('argument checks (validate.ts and native/check.h, the same messages)', function () {
    const f = (n: number): Float32Array => new Float32Array(n);
    const shape = { n: 1, k: 2, h: 3, w: 4, layout: 'nchw' };
    const opt = { outH: 4, outW: 5 };
    const gm = { kind: 'weights', weighting: 'grad-mean' };
    const guide = (o: Record<string, unknown> = {}): unknown => ({ c: 3, layout: 'nhwc', inputGrads: [f(60)], ...o });
    // [arguments, error class, message]
    const bad: [unknown[], string, string][] = [
      [[f(24), [f(24)], { ...shape, k: 0 }, gm, opt], 'RangeError', 'Expected positive integer for shape.k but received 0 of type number'],
      [[f(24), [f(24)], shape, null, opt], 'TypeError', 'Expected object for combine but received null'],
      [[f(24), [f(24)], shape, { kind: 'gradients' }, opt], 'RangeError', "Expected one of 'weights', 'given-weights', 'elementwise', 'given-lowres' for combine.kind but received 'gradients' of type string"],
      [[f(24), [f(24)], shape, { kind: 'weights', weighting: 'gradcam++' }, opt], 'RangeError', "Expected one of 'grad-mean', 'grad-pp', 'grad-pp-normalized', 'grad-act-ratio' for combine.weighting but received 'gradcam++' of type string"],
      [[f(24), [f(24)], shape, { kind: 'weights', weighting: 'grad-pp', eps: -1 }, opt], 'RangeError', 'Expected finite number >= 0 for combine.eps but received -1 of type number'],
      [[f(24), [f(24)], shape, { kind: 'weights', weighting: 'grad-pp', eps: NaN }, opt], 'RangeError', 'Expected finite number >= 0 for combine.eps but received NaN of type number'],
      [[f(24), [f(24)], shape, { kind: 'weights', weighting: 'grad-pp', eps: Infinity }, opt], 'RangeError', 'Expected finite number >= 0 for combine.eps but received Infinity of type number'],
      [[f(24), [f(24)], shape, { kind: 'weights', weighting: 'grad-pp', eps: '1e-7' }, opt], 'TypeError', "Expected finite number >= 0 for combine.eps but received '1e-7' of type string"],
      [[f(24), [f(24)], shape, { kind: 'elementwise', op: 'grad-act' }, opt], 'RangeError', "Expected one of 'grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act' for combine.op but received 'grad-act' of type string"],
      [[f(24), [f(24)], shape, { kind: 'elementwise' }, opt], 'TypeError', "Expected one of 'grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act' for combine.op but received undefined"],
      [[f(24), null, shape, { kind: 'given-weights', weights: f(2) }, opt], 'TypeError', 'Expected array of Float32Array for combine.weights but received Float32Array(2)'],
      [[f(24), null, shape, { kind: 'given-lowres', lowres: [] }, opt], 'RangeError', 'Expected non-empty array of Float32Array for combine.lowres but received []'],
      [[f(24), [f(24)], shape, gm, { outH: 4 }], 'TypeError', 'Expected positive integer for options.outW but received undefined'],
      [[f(24), [f(24)], shape, gm, opt, null], 'TypeError', 'Expected object for guide but received null'],
      [[f(24), [f(24)], shape, gm, opt, guide({ c: 0 })], 'RangeError', 'Expected positive integer for guide.c but received 0 of type number'],
      [[f(24), [f(24)], shape, gm, opt, guide({ layout: 'chw' })], 'RangeError', "Expected one of 'nchw', 'nhwc' for guide.layout but received 'chw' of type string"],
      [[f(24), [f(24)], shape, gm, opt, guide({ inputGrads: f(60) })], 'TypeError', 'Expected array of Float32Array for guide.inputGrads but received Float32Array(60)'],
      [[f(24), null, shape, gm, opt], 'TypeError', 'Expected array of Float32Array for grads but received null'],
      [[f(24), f(24), shape, gm, opt], 'TypeError', 'Expected array of Float32Array for grads but received Float32Array(24)'],
      [[f(24), [], shape, { kind: 'elementwise', op: 'grad-times-act' }, opt], 'RangeError', 'Expected non-empty array of Float32Array for grads but received []'],
      [[f(24), [f(24)], shape, { kind: 'given-weights', weights: [f(2)] }, opt], 'TypeError', "Expected null (combine.kind 'given-weights' reads no gradients) for grads but received array of length 1"],
      [[f(24), [f(24), f(24)], shape, gm, opt, guide()], 'RangeError', 'Expected array of length 2 (one per round) for guide.inputGrads but received array of length 1'],
      [[f(24), null, shape, { kind: 'given-lowres', lowres: [f(12), f(12), f(12)] }, opt, guide({ inputGrads: [] })], 'RangeError', 'Expected array of length 3 (one per round) for guide.inputGrads but received []'],
      [[f(24), [f(24)], { ...shape, n: 2 }, gm, { outH: 46341, outW: 46341 }], 'RangeError', 'Expected at most 2147483647 elements for map but received 4294976562 of type number'],
      [[f(24), [f(24)], shape, gm, { outH: 30000, outW: 30000 }, guide()], 'RangeError', 'Expected at most 2147483647 elements for guided but received 2700000000 of type number'],
      [[f(23), [f(24)], shape, gm, opt], 'RangeError', 'Expected Float32Array of length 24 for a but received Float32Array(23)'],
      [[[1, 2], [f(24)], shape, gm, opt], 'TypeError', 'Expected Float32Array for a but received [1,2]'],
      [[f(24), [f(24), new Float64Array(24)], shape, gm, opt], 'TypeError', 'Expected Float32Array for grads[1] but received Float64Array(24)'],
      [[f(24), [f(24), f(24), f(25)], shape, { kind: 'elementwise', op: 'relu-of-grad-times-act' }, opt], 'RangeError', 'Expected Float32Array of length 24 for grads[2] but received Float32Array(25)'],
      [[f(24), null, shape, { kind: 'given-weights', weights: [f(2), f(3)] }, opt], 'RangeError', 'Expected Float32Array of length 2 for combine.weights[1] but received Float32Array(3)'],
      [[f(24), null, shape, { kind: 'given-lowres', lowres: [f(24)] }, opt], 'RangeError', 'Expected Float32Array of length 12 for combine.lowres[0] but received Float32Array(24)'],
      [[f(24), [f(24)], shape, gm, opt, guide({ inputGrads: [f(59)] })], 'RangeError', 'Expected Float32Array of length 60 for guide.inputGrads[0] but received Float32Array(59)'],
      [[f(24), [f(24)], shape, gm, { ...opt, relu: 1 }], 'TypeError', 'Expected boolean for options.relu but received 1 of type number'],
      [[f(24), [f(24)], shape, gm, { ...opt, alignCorners: 'no' }], 'TypeError', "Expected boolean for options.alignCorners but received 'no' of type string"],
    ];

    it(`${bad.length} bad calls: the exact TypeError / RangeError, in TS and in C++, sync and async`, async function () {
      const js = getKernels('js');
      for (const [args, name, message] of bad) {
        assert.throws(() => (validate.camTail as (...a: unknown[]) => void)(...args), { name, message }, `validate: ${message}`);
        assert.throws(() => (addon.camTail as (...a: unknown[]) => unknown)('cpu', ...args), { name, message }, `addon: ${message}`);
        assert.throws(() => (js.sync.camTail as (...a: unknown[]) => unknown)(...args), { name, message }, `js: ${message}`);
        await assert.rejects((addon.camTailAsync as (...a: unknown[]) => Promise<unknown>)('cpu', ...args), { name, message }, `addon async: ${message}`);
      }
    });

    it('accepts the good calls those are made from', function () {
      for (const args of [
        [f(24), [f(24)], shape, gm, opt, guide()],
        [f(24), null, shape, { kind: 'given-lowres', lowres: [f(12), f(12)] }, { ...opt, relu: false }],
        [f(24), [f(24)], shape, { kind: 'weights', weighting: 'grad-pp', eps: 0 }, opt],
      ]) {
        (validate.camTail as (...a: unknown[]) => void)(...args);
        (addon.camTail as (...a: unknown[]) => unknown)('cpu', ...args);
      }
    });
  });

  describe('Promise variants', function () {
    it('native CPU and the js worker pool give the sync numbers, many calls at once', async function () {
      const all = [...cases('weights', 950, 12), ...cases('given-weights', 951, 4), ...cases('elementwise', 952, 4), ...cases('given-lowres', 953, 4)];
      const js = getKernels('js');
      const native = nativeKernels('cpu');
      await Promise.all(
        all.map(async (c) => {
          const want = run(reference, c);
          assertSameResult(await native.async.camTail(c.a, c.grads, c.shape, c.combine, c.options, c.guide), want, `native async ${c.text}`);
          assertSameResult(await addon.camTailAsync('cpu', c.a, c.grads, c.shape, c.combine, c.options, c.guide), want, `addon async ${c.text}`);
          assertSameResult(await js.async.camTail(c.a, c.grads, c.shape, c.combine, c.options, c.guide), want, `js async ${c.text}`);
        }),
      );
    });
  });

  describe('CUDA against the CPU kernel', function () {
    it('every combine kind on 30 random cases each', function () {
      const info = addon.cudaInfo();
      if (!info.available) {
        this.test!.title += ` (skipped: ${info.reason})`;
        this.skip();
      }
      const cuda = nativeKernels('cuda').sync;
      KINDS.forEach((kind, ki) => {
        for (const c of cases(kind, 960 + ki, 30)) {
          const got = run(cuda, c);
          const want = run(cpu, c);
          assert.equal(got.rounds, want.rounds);
          for (const key of KEYS) {
            if (want[key]) assertClose(got[key]!, want[key]!, `cuda ${c.text} ${key}`, 1e-5, 1e-5);
            else assert.equal(got[key], undefined);
          }
        }
      });
    });
  });

  describe("pytorch-grad-cam's numbers (../shared/reference, b1, argmax class)", function () {
    const models = ['smallvgg', 'mobilenet_v2'];
    const load = (model: string): { a: Float32Array; g: Float32Array; shape: FeatureShape } => {
      const [n, k, h, w] = shapeOf(`outputs/${model}/b1/activations.bin`);
      return {
        a: readF32(`outputs/${model}/b1/activations.bin`),
        g: readF32(`outputs/${model}/b1/argmax/grads.bin`),
        shape: { n, k, h, w, layout: 'nchw' },
      };
    };
    const methods: [string, CamCombine][] = [
      ['gradcampp', { kind: 'weights', weighting: 'grad-pp', eps: 1e-6 }],
      ['xgradcam', { kind: 'weights', weighting: 'grad-act-ratio', eps: 1e-7 }],
      ['hirescam', { kind: 'elementwise', op: 'grad-times-act' }],
      ['layercam', { kind: 'elementwise', op: 'relu-grad-times-act' }],
    ];
    for (const model of models) {
      for (const [method, combine] of methods) {
        it(`${model} ${method}: weights and lowres_raw (TS and native, both layouts)`, function () {
          if (!hasReference() || !hasFile(`outputs/${model}/b1/argmax/${method}.lib.lowres_raw.bin`)) this.skip();
          const { a, g, shape } = load(model);
          const { n, k, h, w } = shape;
          const nhwc = (x: Float32Array): Float32Array => {
            const out = new Float32Array(x.length);
            for (let b = 0; b < n; b++) for (let ch = 0; ch < k; ch++) for (let p = 0; p < h * w; p++) out[(b * h * w + p) * k + ch] = x[(b * k + ch) * h * w + p];
            return out;
          };
          const raw = readF32(`outputs/${model}/b1/argmax/${method}.lib.lowres_raw.bin`);
          const wFile = `outputs/${model}/b1/argmax/${method}.lib.weights.bin`;
          for (const [name, K] of [['ts', reference], ['cpu', cpu]] as const) {
            for (const layout of ['nchw', 'nhwc'] as const) {
              const t = layout === 'nchw'
                ? K.camTail(a, [g], shape, combine, { outH: 224, outW: 224 })
                : K.camTail(nhwc(a), [nhwc(g)], { ...shape, layout }, combine, { outH: 224, outW: 224 });
              if (hasFile(wFile)) assertClose(t.weights!, readF32(wFile), `${name} ${layout} ${model} ${method} weights`, 1e-5, 1e-6);
              assertClose(t.lowresRaw, raw, `${name} ${layout} ${model} ${method} lowres_raw`, 1e-4, 1e-5);
            }
          }
        });
      }

      it(`${model} gradcampp: eps 1e-6 (pytorch-grad-cam's) reproduces the weights, 1e-7 does not`, function () {
        if (!hasReference() || !hasFile(`outputs/${model}/b1/argmax/gradcampp.lib.weights.bin`)) this.skip();
        const { a, g, shape } = load(model);
        const want = readF32(`outputs/${model}/b1/argmax/gradcampp.lib.weights.bin`);
        const maxRel = (eps: number): number => {
          const t = cpu.camTail(a, [g], shape, { kind: 'weights', weighting: 'grad-pp', eps }, { outH: 8, outW: 8 });
          let m = 0;
          for (let i = 0; i < want.length; i++) if (want[i] !== 0) m = Math.max(m, Math.abs(t.weights![i] - want[i]) / Math.abs(want[i]));
          return m;
        };
        const e6 = maxRel(1e-6);
        const e7 = maxRel(1e-7);
        assert.ok(e6 < 1e-5, `eps 1e-6: max relative error ${e6}`);
        assert.ok(e7 > 0.1, `eps 1e-7: max relative error ${e7}`);
      });
    }
  });
});
