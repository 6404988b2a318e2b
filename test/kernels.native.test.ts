/**
 * The native addon (C++ threads, and CUDA where there is a GPU) against the TypeScript twins
 * (lib/kernels/reference.ts) on hundreds of seeded random shapes per kernel, its Promise API,
 * its own argument checks (the messages of lib/kernels/validate.ts), and the fused tail against
 * pytorch-grad-cam's numbers in ../shared/reference.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { GradcamError } from '../lib/errors';
import { type NativeAddon, addonCandidates, loadAddon, packageRoot, prebuildTag } from '../lib/kernels/addon';
import { nativeKernels, nativeStatus } from '../lib/kernels/native';
import { reference } from '../lib/kernels/reference';
import type { FeatureShape, KernelsSync, Layout } from '../lib/kernels/types';
import { validate } from '../lib/kernels/validate';
import { rng } from './helpers/random';
import { NO_REFERENCE, skipBecause } from './helpers/skip';
import { referenceDir } from './helpers/reference-data';


function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

function oneOf<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)];
}

function randomArray(r: () => number, length: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** |got - want| <= rtol*|want| + atol*scale (scale: the largest |want|), NaN only against NaN. */
function assertClose(got: Float32Array, want: Float32Array, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.ok(got instanceof Float32Array, `${what}: not a Float32Array`);
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) if (Math.abs(want[i]) > scale) scale = Math.abs(want[i]);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    const tol = rtol * Math.abs(want[i]) + atol * Math.max(scale, 1e-30);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.fail(`${what}: [${i}] native ${got[i]} vs reference ${want[i]} (tolerance ${tol})`);
    }
  }
}

const CORES = os.cpus().length;

/**
 * Feature shapes: the named corner cases first (1x1 maps, non-square, K = 1, K = 2048, a batch
 * larger than the core count, both layouts), then random ones.
 */
function featureShapes(seed: number, count: number): FeatureShape[] {
  const r = rng(seed);
  const fixed: Omit<FeatureShape, 'layout'>[] = [
    { n: 1, k: 1, h: 1, w: 1 },
    { n: 3, k: 5, h: 1, w: 1 },
    { n: 1, k: 1, h: 7, w: 5 },
    { n: 2, k: 2048, h: 7, w: 7 },
    { n: 1, k: 2048, h: 1, w: 3 },
    { n: CORES * 2 + 3, k: 17, h: 4, w: 9 },
    { n: 2, k: 3, h: 28, w: 13 },
  ];
  const shapes: FeatureShape[] = [];
  for (const f of fixed) for (const layout of ['nchw', 'nhwc'] as const) shapes.push({ ...f, layout });
  while (shapes.length < count) {
    const big = r() < 0.08;
    shapes.push({
      n: r() < 0.15 ? int(r, CORES + 1, CORES * 3 + 2) : int(r, 1, 4),
      k: big ? oneOf(r, [512, 1280, 2048]) : oneOf(r, [1, 2, 3, int(r, 1, 70)]),
      h: big ? int(r, 1, 7) : int(r, 1, 16),
      w: big ? int(r, 1, 7) : int(r, 1, 16),
      layout: r() < 0.5 ? 'nchw' : 'nhwc',
    });
  }
  return shapes;
}

const text = (s: FeatureShape): string => `n=${s.n} k=${s.k} h=${s.h} w=${s.w} ${s.layout}`;
const size = (s: FeatureShape): number => s.n * s.k * s.h * s.w;

describe('native kernels (addon) against the TypeScript twins', function () {
  let addon: NativeAddon;
  let cpu: KernelsSync;

  before(function () {
    const st = nativeStatus();
    if (!st.loaded && process.env.GRADCAM_DISABLE_NATIVE === '1') skipBecause(this, 'the native addon is disabled (GRADCAM_DISABLE_NATIVE=1)');
    // a missing addon is a failure (CI builds it first), with the loader's own explanation
    assert.ok(st.loaded, `native addon not loaded: ${st.error}`);
    addon = loadAddon().addon!;
    cpu = nativeKernels('cpu').sync;
  });

  describe('loader and status', function () {
    it('finds the package root and loads the first candidate that exists (GRADCAM_NATIVE_PATH, build/Release, build/Debug, prebuilds/<platform>-<arch>)', function () {
      const root = packageRoot();
      assert.ok(root && fs.existsSync(path.join(root, 'package.json')));
      const st = nativeStatus();
      const candidates = addonCandidates();
      const tail = candidates.slice(process.env.GRADCAM_NATIVE_PATH ? 1 : 0).map((c) => path.relative(root!, c));
      assert.deepEqual(tail, ['build/Release/gradcam_native.node', 'build/Debug/gradcam_native.node', `prebuilds/${prebuildTag()}/gradcam_native.node`]);
      assert.equal(st.path, candidates.find((c) => fs.existsSync(c)));
      assert.equal(typeof st.cuda.available, 'boolean');
      assert.ok(st.cuda.reason.length > 0);
      assert.ok(addon.cpuThreads() >= 1);
    });

    it('exports every kernel of the contract, sync and async', function () {
      for (const name of Object.keys(reference)) {
        assert.equal(typeof (addon as unknown as Record<string, unknown>)[name], 'function', name);
        assert.equal(typeof (addon as unknown as Record<string, unknown>)[`${name}Async`], 'function', `${name}Async`);
      }
    });

    it("nativeKernels('cuda') is a GradcamError where CUDA is unavailable, and an unknown device a RangeError", function () {
      if (nativeStatus().cuda.available) {
        assert.equal(typeof nativeKernels('cuda').sync.gradcamTail, 'function');
      } else {
        assert.throws(() => nativeKernels('cuda'), (e: unknown) => e instanceof GradcamError && e.code === 'ENOCUDA');
      }
      assert.throws(() => nativeKernels('gpu' as 'cpu'), {
        name: 'RangeError',
        message: "Expected one of 'cpu', 'cuda' for device but received 'gpu' of type string",
      });
    });
  });

  describe('CPU parity on random shapes', function () {
    it('channelMean: 220 shapes', function () {
      const r = rng(1);
      for (const s of featureShapes(101, 220)) {
        const x = randomArray(r, size(s));
        assertClose(cpu.channelMean(x, s), reference.channelMean(x, s), `channelMean ${text(s)}`);
      }
    });

    it('channelSums: 220 shapes', function () {
      const r = rng(2);
      for (const s of featureShapes(102, 220)) {
        const g = randomArray(r, size(s));
        const a = randomArray(r, size(s), 0, 3);
        const got = cpu.channelSums(g, a, s);
        const want = reference.channelSums(g, a, s);
        for (const key of ['g', 'g2', 'g3', 'a', 'ga'] as const) assertClose(got[key], want[key], `channelSums.${key} ${text(s)}`);
      }
    });

    it('weightedChannelSum, with and without ReLU: 220 shapes', function () {
      const r = rng(3);
      for (const s of featureShapes(103, 220)) {
        const weights = randomArray(r, s.n * s.k);
        const a = randomArray(r, size(s), 0, 3);
        const relu = r() < 0.5;
        assertClose(cpu.weightedChannelSum(weights, a, s, relu), reference.weightedChannelSum(weights, a, s, relu), `weightedChannelSum ${text(s)} relu=${relu}`);
      }
    });

    it('elementwiseChannelSum, both ops, with and without ReLU: 220 shapes', function () {
      const r = rng(4);
      for (const s of featureShapes(104, 220)) {
        const g = randomArray(r, size(s));
        const a = randomArray(r, size(s), 0, 3);
        const op = r() < 0.5 ? 'grad-times-act' : 'relu-grad-times-act';
        const relu = r() < 0.5;
        assertClose(cpu.elementwiseChannelSum(g, a, s, op, relu), reference.elementwiseChannelSum(g, a, s, op, relu), `elementwiseChannelSum ${text(s)} ${op} relu=${relu}`);
      }
    });

    it('resizeBilinear, up and down, both corner conventions: 300 size pairs', function () {
      const r = rng(5);
      const cases: [number, number, number, number, number][] = [
        [1, 1, 1, 1, 1], [2, 1, 1, 224, 224], [1, 7, 7, 224, 224], [3, 14, 9, 5, 3], [1, 28, 28, 1, 1], [CORES * 2 + 1, 2, 3, 17, 33],
      ];
      while (cases.length < 300) {
        const n = r() < 0.15 ? int(r, CORES + 1, CORES * 3) : int(r, 1, 3);
        cases.push([n, int(r, 1, 30), int(r, 1, 30), int(r, 1, r() < 0.2 ? 250 : 40), int(r, 1, r() < 0.2 ? 250 : 40)]);
      }
      cases.forEach(([n, h, w, outH, outW], i) => {
        const x = randomArray(r, n * h * w);
        const options = i % 3 === 0 ? undefined : { alignCorners: i % 3 === 1 };
        assertClose(cpu.resizeBilinear(x, n, h, w, outH, outW, options), reference.resizeBilinear(x, n, h, w, outH, outW, options), `resizeBilinear n=${n} ${h}x${w} -> ${outH}x${outW} ${JSON.stringify(options)}`);
      });
    });

    it('minMaxNormalize, including constant and all-zero images: 220 cases', function () {
      const r = rng(6);
      for (let i = 0; i < 220; i++) {
        const n = i % 10 === 0 ? CORES * 2 + 1 : int(r, 1, 4);
        const len = oneOf(r, [1, 2, 49, int(r, 1, 3000)]);
        const x = randomArray(r, n * len, -5, 5);
        if (i % 7 === 0) x.fill(0, 0, len); // an all-zero image stays zero
        if (i % 11 === 0) x.fill(2.5, 0, len); // a constant image becomes zero
        const got = cpu.minMaxNormalize(x, n, len);
        assertClose(got, reference.minMaxNormalize(x, n, len), `minMaxNormalize n=${n} size=${len}`);
        if (i % 7 === 0 || i % 11 === 0) for (let p = 0; p < len; p++) assert.equal(got[p], 0);
      }
    });

    it('guidedProduct, both layouts: 220 cases', function () {
      const r = rng(7);
      for (let i = 0; i < 220; i++) {
        const n = i % 10 === 0 ? CORES * 2 + 1 : int(r, 1, 3);
        const c = oneOf(r, [1, 3, 4, int(r, 1, 8)]);
        const H = int(r, 1, 40);
        const W = int(r, 1, 40);
        const layout: Layout = i % 2 ? 'nhwc' : 'nchw';
        const guided = randomArray(r, n * c * H * W);
        const cam = randomArray(r, n * H * W, 0, 1);
        assertClose(cpu.guidedProduct(guided, cam, n, c, H, W, layout), reference.guidedProduct(guided, cam, n, c, H, W, layout), `guidedProduct n=${n} c=${c} ${H}x${W} ${layout}`);
      }
    });

    it('writes into a given `out` array (sync and async, resize and guided product) and returns it', async function () {
      const r = rng(17);
      for (let i = 0; i < 40; i++) {
        const n = int(r, 1, 4), c = oneOf(r, [1, 3]), h = int(r, 1, 9), w = int(r, 1, 9), H = int(r, 1, 30), W = int(r, 1, 30);
        const layout: Layout = i % 2 ? 'nhwc' : 'nchw';
        const x = randomArray(r, n * h * w, 0, 1);
        const guided = randomArray(r, n * c * H * W);
        const cam = new Float32Array(n * H * W).fill(NaN); // overwritten completely
        assert.equal(cpu.resizeBilinear(x, n, h, w, H, W, undefined, cam), cam);
        assertClose(cam, reference.resizeBilinear(x, n, h, w, H, W), `resize into out ${n}x${h}x${w}->${H}x${W}`);
        const out = new Float32Array(guided.length).fill(NaN);
        assert.equal(cpu.guidedProduct(guided, cam, n, c, H, W, layout, out), out);
        assertClose(out, reference.guidedProduct(guided, cam, n, c, H, W, layout), `guided into out n=${n} c=${c} ${layout}`);
        const out2 = new Float32Array(guided.length);
        assert.equal(await nativeKernels('cpu').async.guidedProduct(guided, cam, n, c, H, W, layout, out2), out2);
        assertClose(out2, out, 'async guided into out');
      }
    });

    it('gradcamTail, every stage, relu and alignCorners both ways: 200 shapes', function () {
      const r = rng(8);
      featureShapes(108, 200).forEach((s, i) => {
        const a = randomArray(r, size(s), 0, 3);
        const g = randomArray(r, size(s));
        const options = {
          outH: oneOf(r, [1, 7, int(r, 1, 64), 224]),
          outW: oneOf(r, [1, 5, int(r, 1, 64)]),
          ...(i % 3 === 0 ? {} : { relu: i % 3 === 1 }),
          ...(i % 4 < 2 ? {} : { alignCorners: i % 4 === 3 }),
        };
        const got = cpu.gradcamTail(a, g, s, options);
        const want = reference.gradcamTail(a, g, s, options);
        for (const key of ['weights', 'lowresRaw', 'lowres', 'map'] as const) {
          assertClose(got[key], want[key], `gradcamTail.${key} ${text(s)} ${JSON.stringify(options)}`);
        }
      });
    });
  });

  describe('Promise API', function () {
    it('gives the same numbers as the synchronous calls, also when many run at once', async function () {
      const r = rng(9);
      const jobs: Promise<void>[] = [];
      for (const s of featureShapes(109, 24)) {
        const a = randomArray(r, size(s), 0, 3);
        const g = randomArray(r, size(s));
        const w = randomArray(r, s.n * s.k);
        const x = randomArray(r, s.n * s.h * s.w);
        const check = async <T>(p: Promise<T>, want: T, what: string): Promise<void> => assert.deepEqual(await p, want, what);
        jobs.push(
          check(addon.channelMeanAsync('cpu', g, s), addon.channelMean('cpu', g, s), `channelMean ${text(s)}`),
          check(addon.channelSumsAsync('cpu', g, a, s), addon.channelSums('cpu', g, a, s), `channelSums ${text(s)}`),
          check(addon.weightedChannelSumAsync('cpu', w, a, s, true), addon.weightedChannelSum('cpu', w, a, s, true), `weightedChannelSum ${text(s)}`),
          check(addon.elementwiseChannelSumAsync('cpu', g, a, s, 'relu-grad-times-act', false), addon.elementwiseChannelSum('cpu', g, a, s, 'relu-grad-times-act', false), `elementwiseChannelSum ${text(s)}`),
          check(addon.resizeBilinearAsync('cpu', x, s.n, s.h, s.w, 31, 17, { alignCorners: true }), addon.resizeBilinear('cpu', x, s.n, s.h, s.w, 31, 17, { alignCorners: true }), `resizeBilinear ${text(s)}`),
          check(addon.minMaxNormalizeAsync('cpu', x, s.n, s.h * s.w), addon.minMaxNormalize('cpu', x, s.n, s.h * s.w), `minMaxNormalize ${text(s)}`),
          check(addon.guidedProductAsync('cpu', a, x, s.n, s.k, s.h, s.w, s.layout), addon.guidedProduct('cpu', a, x, s.n, s.k, s.h, s.w, s.layout), `guidedProduct ${text(s)}`),
          check(addon.gradcamTailAsync('cpu', a, g, s, { outH: 40, outW: 30 }), addon.gradcamTail('cpu', a, g, s, { outH: 40, outW: 30 }), `gradcamTail ${text(s)}`),
        );
      }
      await Promise.all(jobs);
      // and through the KernelsAsync adapter
      const s: FeatureShape = { n: 2, k: 8, h: 3, w: 4, layout: 'nhwc' };
      const a = randomArray(r, size(s));
      const g = randomArray(r, size(s));
      assert.deepEqual(await nativeKernels('cpu').async.gradcamTail(a, g, s, { outH: 9, outW: 9 }), reference.gradcamTail(a, g, s, { outH: 9, outW: 9 }));
    });

    it('runs off the main thread: the Promise settles only through the event loop', async function () {
      const r = rng(10);
      const s: FeatureShape = { n: 16, k: 2048, h: 14, w: 14, layout: 'nchw' };
      const a = randomArray(r, size(s), 0, 3);
      const g = randomArray(r, size(s));
      const options = { outH: 64, outW: 64 }; // much work, small outputs (allocated on the main thread)
      const want = addon.gradcamTail('cpu', a, g, s, options);

      const pending = addon.gradcamTailAsync('cpu', a, g, s, options);
      let settled = false;
      void pending.then(() => (settled = true));
      // A synchronous call dressed as a Promise settles within these microtask turns; a worker's
      // result arrives only through the event loop (libuv's async handle), never here.
      // (Counting setImmediate turns while the call runs was flaky on a loaded 2-core machine:
      // the worker can finish before the main thread reaches the loop's check phase.)
      for (let i = 0; i < 20; i++) await Promise.resolve();
      assert.equal(settled, false, 'settled without an event-loop turn: a synchronous call dressed as a Promise');
      assert.deepEqual(await pending, want);
    });

    it('rejects (does not throw) on bad arguments, with the same error as the sync call', async function () {
      const s = { n: 1, k: 2, h: 3, w: 4, layout: 'nchw' };
      await assert.rejects(addon.channelMeanAsync('cpu', new Float32Array(5), s as FeatureShape), {
        name: 'RangeError',
        message: 'Expected Float32Array of length 24 for x but received Float32Array(5)',
      });
      await assert.rejects(addon.gradcamTailAsync('cpu', new Float32Array(24), new Float32Array(24), s as FeatureShape, null as never), {
        name: 'TypeError',
        message: 'Expected object for options but received null',
      });
    });
  });

  describe('argument checks in C++ (same messages as lib/kernels/validate.ts)', function () {
    const f = (n: number): Float32Array => new Float32Array(n);
    const shared = new Float32Array(64); // one buffer, for outputs overlapping inputs
    const shape = (o: Record<string, unknown> = {}): unknown => ({ n: 1, k: 2, h: 3, w: 4, layout: 'nchw', ...o });
    // [kernel, arguments (after the device), expected error class, expected message]
    const cases: [keyof KernelsSync, unknown[], string, string][] = [
      ['channelMean', [new Float64Array(24), shape()], 'TypeError', 'Expected Float32Array for x but received Float64Array(24)'],
      ['channelMean', [[1, 2], shape()], 'TypeError', 'Expected Float32Array for x but received [1,2]'],
      ['channelMean', [new Array(9).fill(0.5), shape()], 'TypeError', 'Expected Float32Array for x but received array of length 9'],
      ['channelMean', [[1, 'a'], shape()], 'TypeError', 'Expected Float32Array for x but received array of length 2'],
      ['channelMean', [f(24), undefined], 'TypeError', 'Expected object for shape but received undefined'],
      ['channelMean', [f(24), [1, 2, 3, 4]], 'TypeError', 'Expected object for shape but received [1,2,3,4]'],
      ['channelMean', [f(24), shape({ n: 0 })], 'RangeError', 'Expected positive integer for shape.n but received 0 of type number'],
      ['channelMean', [f(24), shape({ k: -2 })], 'RangeError', 'Expected positive integer for shape.k but received -2 of type number'],
      ['channelMean', [f(24), shape({ h: NaN })], 'RangeError', 'Expected positive integer for shape.h but received NaN of type number'],
      ['channelMean', [f(24), shape({ w: 1.5 })], 'RangeError', 'Expected positive integer for shape.w but received 1.5 of type number'],
      ['channelMean', [f(24), shape({ w: Infinity })], 'RangeError', 'Expected positive integer for shape.w but received Infinity of type number'],
      ['channelMean', [f(24), shape({ k: '2' })], 'TypeError', "Expected positive integer for shape.k but received '2' of type string"],
      ['channelMean', [f(24), shape({ h: undefined })], 'TypeError', 'Expected positive integer for shape.h but received undefined'],
      ['channelMean', [f(24), shape({ layout: 'NCHW' })], 'RangeError', "Expected one of 'nchw', 'nhwc' for shape.layout but received 'NCHW' of type string"],
      ['channelMean', [f(24), shape({ layout: 1 })], 'TypeError', "Expected one of 'nchw', 'nhwc' for shape.layout but received 1 of type number"],
      ['channelMean', [f(24), shape({ n: 65536, k: 65536 })], 'RangeError', 'Expected at most 2147483647 elements for x but received 51539607552 of type number'],
      ['channelMean', [f(24), shape({ k: 1e300 })], 'RangeError', 'Expected at most 2147483647 elements for x but received 1.2e+301 of type number'],
      ['channelSums', [f(10), f(24), shape()], 'RangeError', 'Expected Float32Array of length 24 for g but received Float32Array(10)'],
      ['channelSums', [f(24), new Uint8Array(24), shape()], 'TypeError', 'Expected Float32Array for a but received Uint8Array(24)'],
      ['channelSums', [f(24), Buffer.alloc(3), shape()], 'TypeError', 'Expected Float32Array for a but received Buffer(3)'],
      ['weightedChannelSum', [f(3), f(24), shape(), true], 'RangeError', 'Expected Float32Array of length 2 for weights but received Float32Array(3)'],
      ['weightedChannelSum', [f(2), f(24), shape(), 1], 'TypeError', 'Expected boolean for relu but received 1 of type number'],
      ['weightedChannelSum', [f(2), new DataView(new ArrayBuffer(8)), shape(), true], 'TypeError', 'Expected Float32Array for a but received DataView'],
      ['elementwiseChannelSum', [f(24), f(24), shape(), 'grad-act', false], 'RangeError', "Expected one of 'grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act' for op but received 'grad-act' of type string"],
      ['elementwiseChannelSum', [f(24), f(24), shape(), 'grad-times-act', null], 'TypeError', 'Expected boolean for relu but received null'],
      ['resizeBilinear', [f(6), 1, 2, 3, 0, 5], 'RangeError', 'Expected positive integer for outH but received 0 of type number'],
      ['resizeBilinear', [f(6), 1, 2, 3, 4, 5, { alignCorners: 'yes' }], 'TypeError', "Expected boolean for options.alignCorners but received 'yes' of type string"],
      ['resizeBilinear', [f(6), 1, 2, 3, 4, 5, 7], 'TypeError', 'Expected object for options but received 7 of type number'],
      ['resizeBilinear', [f(6), 1, 2, 3, 65536, 65536], 'RangeError', 'Expected at most 2147483647 elements for out but received 4294967296 of type number'],
      ['resizeBilinear', [f(7), 1, 2, 3, 4, 5], 'RangeError', 'Expected Float32Array of length 6 for x but received Float32Array(7)'],
      ['minMaxNormalize', [f(6), 0, 6], 'RangeError', 'Expected positive integer for n but received 0 of type number'],
      ['minMaxNormalize', [f(6), 2n, 6], 'TypeError', 'Expected positive integer for n but received 2 of type bigint'],
      ['minMaxNormalize', [new Float32Array(new ArrayBuffer(64), 8, 5), 1, 6], 'RangeError', 'Expected Float32Array of length 6 for x but received Float32Array(5)'],
      ['guidedProduct', [f(24), f(12), 2, 1, 3, 4, 'chw'], 'RangeError', "Expected one of 'nchw', 'nhwc' for layout but received 'chw' of type string"],
      ['guidedProduct', [f(24), f(11), 2, 1, 3, 4, 'nhwc'], 'RangeError', 'Expected Float32Array of length 24 for cam but received Float32Array(11)'],
      ['guidedProduct', [f(24), f(24), 2, 1, 3, 4, 'nhwc', f(23)], 'RangeError', 'Expected Float32Array of length 24 for out but received Float32Array(23)'],
      ['guidedProduct', [f(24), f(24), 2, 1, 3, 4, 'nhwc', new Float64Array(24)], 'TypeError', 'Expected Float32Array for out but received Float64Array(24)'],
      ['guidedProduct', [shared.subarray(0, 24), f(24), 2, 1, 3, 4, 'nhwc', shared.subarray(23, 47)], 'RangeError', 'Expected Float32Array not overlapping guided for out but received Float32Array(24)'],
      ['guidedProduct', [f(24), shared.subarray(40, 64), 2, 1, 3, 4, 'nhwc', shared.subarray(20, 44)], 'RangeError', 'Expected Float32Array not overlapping cam for out but received Float32Array(24)'],
      ['resizeBilinear', [shared.subarray(0, 6), 1, 2, 3, 4, 5, undefined, shared.subarray(5, 25)], 'RangeError', 'Expected Float32Array not overlapping x for out but received Float32Array(20)'],
      ['resizeBilinear', [f(6), 1, 2, 3, 4, 5, undefined, f(21)], 'RangeError', 'Expected Float32Array of length 20 for out but received Float32Array(21)'],
      ['gradcamTail', [f(24), f(24), shape(), null], 'TypeError', 'Expected object for options but received null'],
      ['gradcamTail', [f(24), f(24), shape(), { outH: 4 }], 'TypeError', 'Expected positive integer for options.outW but received undefined'],
      ['gradcamTail', [f(24), f(24), shape({ n: 2 }), { outH: 46341, outW: 46341 }], 'RangeError', 'Expected at most 2147483647 elements for map but received 4294976562 of type number'],
      ['gradcamTail', [f(24), f(23), shape(), { outH: 4, outW: 4 }], 'RangeError', 'Expected Float32Array of length 24 for g but received Float32Array(23)'],
      ['gradcamTail', [f(24), f(24), shape(), { outH: 4, outW: 4, relu: 'no' }], 'TypeError', "Expected boolean for options.relu but received 'no' of type string"],
    ];

    it('throws the exact TypeError / RangeError for each bad argument, as validate.ts does', function () {
      for (const [kernel, args, name, message] of cases) {
        const fn = (addon as unknown as Record<string, (...a: unknown[]) => unknown>)[kernel];
        assert.throws(() => fn('cpu', ...args), { name, message }, `${kernel}(${message})`);
        const check = validate[kernel] as (...a: unknown[]) => void;
        assert.throws(() => check(...args), { name, message }, `validate.${kernel} disagrees: ${message}`);
      }
    });

    it('rejects an unknown device and a non-string device', function () {
      assert.throws(() => addon.channelMean('gpu' as 'cpu', f(24), shape() as FeatureShape), {
        name: 'RangeError',
        message: "Expected one of 'cpu', 'cuda' for device but received 'gpu' of type string",
      });
      assert.throws(() => addon.minMaxNormalize(undefined as unknown as 'cpu', f(6), 1, 6), {
        name: 'TypeError',
        message: "Expected one of 'cpu', 'cuda' for device but received undefined",
      });
    });

    it('reads a Float32Array view at its byte offset, in place', function () {
      const buf = new Float32Array([9, 9, 1, 2, 3, 4, 9]);
      const view = buf.subarray(2, 6);
      assert.deepEqual(Array.from(addon.minMaxNormalize('cpu', view, 1, 4)), Array.from(reference.minMaxNormalize(view, 1, 4)));
      assert.deepEqual(Array.from(addon.channelMean('cpu', view, { n: 1, k: 2, h: 1, w: 2, layout: 'nchw' })), [1.5, 3.5]);
    });

    it("says why 'cuda' cannot run where there is no GPU", async function () {
      if (addon.cudaInfo().available) skipBecause(this, 'a CUDA device is available: the no-GPU message cannot be seen');
      assert.throws(() => addon.minMaxNormalize('cuda', f(6), 1, 6), /^Error: CUDA is not available: /);
      await assert.rejects(addon.minMaxNormalizeAsync('cuda', f(6), 1, 6), /CUDA is not available: /);
    });
  });

  describe('the fused tail against pytorch-grad-cam (../shared/reference)', function () {
    const refDir = path.join(referenceDir(), 'outputs');
    const read = (p: string): Float32Array => {
      const b = fs.readFileSync(path.join(refDir, p));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    const cases: [string, FeatureShape][] = [
      ['mobilenet_v2/b1', { n: 1, k: 1280, h: 7, w: 7, layout: 'nchw' }],
      ['smallvgg/b4', { n: 4, k: 128, h: 28, w: 28, layout: 'nchw' }],
    ];
    for (const [dir, s] of cases) {
      it(`${dir}: weights, lowres_raw and the final 224x224 map`, function () {
        if (!fs.existsSync(refDir)) skipBecause(this, NO_REFERENCE);
        const a = read(`${dir}/activations.bin`);
        const g = read(`${dir}/argmax/grads.bin`);
        const t = cpu.gradcamTail(a, g, s, { outH: 224, outW: 224 });
        const raw = read(`${dir}/argmax/gradcam.lib.lowres_raw.bin`);
        assertClose(t.lowresRaw, raw, `${dir} lowres_raw`, 1e-4, 1e-5);
        assertClose(t.map, read(`${dir}/argmax/gradcam.lib.final.bin`), `${dir} final`, 0, 1e-5);
        if (fs.existsSync(path.join(refDir, `${dir}/argmax/gradcam.lib.weights.bin`))) {
          assertClose(t.weights, read(`${dir}/argmax/gradcam.lib.weights.bin`), `${dir} weights`, 1e-5, 1e-6);
        }
      });
    }
  });

  describe('CUDA against the CPU kernels', function () {
    before(function () {
      if (!addon || !addon.cudaInfo().available) skipBecause(this, `no CUDA device for the CUDA kernels (${addon ? addon.cudaInfo().reason : 'no addon'})`);
    });

    it('every kernel on 60 random shapes', async function () {
      const cuda = nativeKernels('cuda');
      const r = rng(11);
      for (const s of featureShapes(111, 60)) {
        const a = randomArray(r, size(s), 0, 3);
        const g = randomArray(r, size(s));
        const w = randomArray(r, s.n * s.k);
        const x = randomArray(r, s.n * s.h * s.w);
        const t = text(s);
        assertClose(cuda.sync.channelMean(g, s), cpu.channelMean(g, s), `cuda channelMean ${t}`);
        const cs = cuda.sync.channelSums(g, a, s);
        const cc = cpu.channelSums(g, a, s);
        for (const key of ['g', 'g2', 'g3', 'a', 'ga'] as const) assertClose(cs[key], cc[key], `cuda channelSums.${key} ${t}`);
        assertClose(cuda.sync.weightedChannelSum(w, a, s, true), cpu.weightedChannelSum(w, a, s, true), `cuda weightedChannelSum ${t}`);
        assertClose(cuda.sync.elementwiseChannelSum(g, a, s, 'grad-times-act', false), cpu.elementwiseChannelSum(g, a, s, 'grad-times-act', false), `cuda elementwiseChannelSum ${t}`);
        assertClose(cuda.sync.resizeBilinear(x, s.n, s.h, s.w, 37, 224), cpu.resizeBilinear(x, s.n, s.h, s.w, 37, 224), `cuda resizeBilinear ${t}`);
        assertClose(cuda.sync.minMaxNormalize(x, s.n, s.h * s.w), cpu.minMaxNormalize(x, s.n, s.h * s.w), `cuda minMaxNormalize ${t}`);
        assertClose(cuda.sync.guidedProduct(a, x, s.n, s.k, s.h, s.w, s.layout), cpu.guidedProduct(a, x, s.n, s.k, s.h, s.w, s.layout), `cuda guidedProduct ${t}`);
        const ct = await cuda.async.gradcamTail(a, g, s, { outH: 224, outW: 224 });
        const pt = cpu.gradcamTail(a, g, s, { outH: 224, outW: 224 });
        for (const key of ['weights', 'lowresRaw', 'lowres', 'map'] as const) assertClose(ct[key], pt[key], `cuda gradcamTail.${key} ${t}`);
      }
    });
  });
});
