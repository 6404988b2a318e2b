/**
 * Memory safety of the kernels when the caller's code frees or resizes a buffer during a call
 * (native/README.md, "The caller's buffers"): a transfer or a resizable ArrayBuffer shrunk while
 * a Promise call runs, getters on shape and options objects that detach an array after it was
 * checked, an `out` array aliasing an input through a cloned SharedArrayBuffer, and a valid but
 * huge output that cannot be allocated. Each gives the right numbers or a clear error, never
 * freed memory (before the fix: SIGSEGV, heap-use-after-free under ASan) or a V8 fatal error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { getKernels } from '../lib/kernels';
import { type NativeAddon, loadAddon } from '../lib/kernels/addon';
import { nativeStatus } from '../lib/kernels/native';
import { reference } from '../lib/kernels/reference';
import type { CamCombine, CamGuide, CamTailResult, FeatureShape } from '../lib/kernels/types';

/** Detaches a's buffer as a transfer to another realm would (V8 frees it once `structuredClone`'s copy is collected). */
function transfer(a: Float32Array | Uint8Array): void {
  structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
}

/**
 * Transfers a's buffer and overwrites its memory through the new owner (the transfer moves the
 * memory, no copy): a kernel still reading the caller's memory then reads NaN or garbage, without
 * waiting for a GC to free it.
 */
function transferAndScribble(a: Float32Array | Uint8Array): void {
  const moved = structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] }) as ArrayBuffer;
  new Uint8Array(moved).fill(0xff); // NaN as float32, 255 as bytes
}

/** Allocates and drops memory so that freed buffers get reused. */
function churn(): void {
  for (let i = 0; i < 3; i++) new Float32Array(4 << 20).fill(i);
}

function ramp(length: number, buffer?: ArrayBufferLike): Float32Array {
  const a = buffer ? new Float32Array(buffer, 0, length) : new Float32Array(length);
  const period = Math.min(length, 1013);
  for (let i = 0; i < period; i++) a[i] = i / 1013;
  for (let i = period; i < length; i += period) a.copyWithin(i, 0, Math.min(period, length - i));
  return a;
}

/** Same length and the same values (NaN never expected), without deepEqual's cost on big arrays. */
function assertSame(got: Float32Array, want: Float32Array, what = 'result'): void {
  assert.ok(got instanceof Float32Array, `${what}: not a Float32Array`);
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.fail(`${what}: [${i}] ${got[i]} vs ${want[i]}`);
}

/** A resizable ArrayBuffer (Node 20: `new ArrayBuffer(n, { maxByteLength })`), or undefined where unsupported. */
function resizable(bytes: number): (ArrayBuffer & { resize(n: number): void }) | undefined {
  const b = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(bytes, { maxByteLength: bytes });
  return typeof (b as { resize?: unknown }).resize === 'function' ? (b as ArrayBuffer & { resize(n: number): void }) : undefined;
}

const lengthError = (name: string, length: number, received = 0) => ({
  name: 'RangeError',
  message: `Expected Float32Array of length ${length} for ${name} but received Float32Array(${received})`,
});

// 16 MiB feature maps: long enough (milliseconds) for the transfer to land while the kernel runs
const BIG: FeatureShape = { n: 1, k: 4, h: 1024, w: 1024, layout: 'nchw' };
const BIG_LEN = 4 * 1024 * 1024;

describe('kernel memory safety: buffers freed or resized during a call', function () {
  this.timeout(30000);
  let addon: NativeAddon | undefined;
  const devices: ('cpu' | 'js')[] = ['js'];

  before(function () {
    if (nativeStatus().loaded) {
      addon = loadAddon().addon;
      devices.unshift('cpu');
    }
  });

  describe('Promise calls: input transferred or shrunk while the kernel runs', function () {
    for (const device of ['cpu', 'js'] as const) {
      it(`${device}: channelMean of a transferred input has the input's numbers`, async function () {
        if (!devices.includes(device)) this.skip();
        const x = new Float32Array(BIG_LEN).fill(1);
        const p = getKernels(device).async.channelMean(x, BIG);
        transfer(x);
        churn();
        assert.deepEqual(Array.from(await p), [1, 1, 1, 1]);
      });

      it(`${device}: resizeBilinear of an input on a resizable ArrayBuffer shrunk to 0`, async function () {
        if (!devices.includes(device)) this.skip();
        const len = 1024 * 1024;
        const rab = resizable(len * 4);
        if (!rab) this.skip();
        const x = ramp(len, rab);
        const want = reference.resizeBilinear(x.slice(), 1, 1024, 1024, 256, 256);
        const p = getKernels(device).async.resizeBilinear(x, 1, 1024, 1024, 256, 256);
        rab.resize(0);
        churn();
        assertSame(await p, want);
      });

      it(`${device}: the caller's out transferred mid-call rejects with a RangeError, an input transferred gives the right numbers`, async function () {
        if (!devices.includes(device)) this.skip();
        const K = getKernels(device).async;
        const x = ramp(256 * 256);
        const want = reference.resizeBilinear(x, 1, 256, 256, 1024, 1024);
        const out = new Float32Array(1024 * 1024);
        const p = K.resizeBilinear(x, 1, 256, 256, 1024, 1024, undefined, out);
        transfer(out);
        churn();
        await assert.rejects(p, lengthError('out', 1024 * 1024));

        const out2 = new Float32Array(1024 * 1024);
        const x2 = x.slice();
        const p2 = K.resizeBilinear(x2, 1, 256, 256, 1024, 1024, undefined, out2);
        transfer(x2);
        churn();
        assert.equal(await p2, out2);
        assertSame(out2, want);
      });

      it(`${device}: guidedProduct and gradcamTail with every input transferred`, async function () {
        if (!devices.includes(device)) this.skip();
        const K = getKernels(device).async;
        const guided = ramp(3 * 512 * 512);
        const cam = ramp(512 * 512);
        const wantG = reference.guidedProduct(guided, cam, 1, 3, 512, 512, 'nchw');
        const [guided2, cam2] = [guided.slice(), cam.slice()];
        const pg = K.guidedProduct(guided2, cam2, 1, 3, 512, 512, 'nchw');
        transfer(guided2);
        transfer(cam2);
        const s: FeatureShape = { n: 1, k: 64, h: 64, w: 64, layout: 'nhwc' };
        const a = ramp(64 * 64 * 64);
        const g = ramp(64 * 64 * 64).map((v) => v - 0.5);
        const wantT = reference.gradcamTail(a, g, s, { outH: 64, outW: 64 });
        const [a2, g2] = [a.slice(), g.slice()];
        const pt = K.gradcamTail(a2, g2, s, { outH: 64, outW: 64 });
        transfer(a2);
        transfer(g2);
        churn();
        assertSame(await pg, wantG);
        const got = await pt;
        for (const key of ['weights', 'lowresRaw', 'lowres', 'map'] as const) {
          assert.ok(got[key].every((v, i) => Math.abs(v - wantT[key][i]) <= 1e-5), key);
        }
      });
    }

    it('js: a call queued behind busy workers uses the input as it was at the call', async function () {
      const K = getKernels('js').async;
      const x = new Float32Array(1 << 18).fill(1);
      const calls = [0, 1, 2, 3, 4, 5].map(() => K.minMaxNormalize(x, 1, 1 << 18));
      x[0] = 0;
      x[1] = 9; // after the calls: must not be seen
      const last = K.minMaxNormalize(x, 1, 1 << 18);
      transfer(x);
      for (const r of await Promise.all(calls)) assert.ok(r.every((v) => v === 0));
      const l = await last;
      assert.equal(l[0], 0);
      assert.equal(l[1], 1);
    });

    it('cpu: the addon called directly, inputs on a SharedArrayBuffer are used in place and stay correct', async function () {
      if (!addon) this.skip();
      const x = ramp(BIG_LEN, new SharedArrayBuffer(BIG_LEN * 4));
      const got = await addon.channelMeanAsync('cpu', x, BIG);
      assertSame(got, reference.channelMean(x, BIG));
      const x1 = x.subarray(0, 1024 * 1024);
      const out = new Float32Array(new SharedArrayBuffer(64 * 64 * 4));
      assert.equal(await addon.resizeBilinearAsync('cpu', x1, 1, 1024, 1024, 64, 64, undefined, out), out);
      assertSame(out, reference.resizeBilinear(x1, 1, 1024, 1024, 64, 64));
    });
  });

  describe('getters on shape and options objects that detach an array', function () {
    /** A shape whose `layout` getter runs `effect` (once, when first read). */
    function trappedShape(s: FeatureShape, effect: () => void): FeatureShape {
      let done = false;
      return {
        ...s,
        get layout() {
          if (!done) {
            done = true;
            effect();
          }
          return s.layout;
        },
      };
    }
    const small: FeatureShape = { n: 2, k: 3, h: 16, w: 16, layout: 'nchw' };
    const len = 2 * 3 * 16 * 16;

    it('addon (sync and Promise): a shape getter transferring x -> RangeError for x', async function () {
      if (!addon) this.skip();
      const x = ramp(len);
      assert.throws(() => addon!.channelMean('cpu', x, trappedShape(small, () => transfer(x))), lengthError('x', len));
      const y = ramp(len);
      await assert.rejects(addon.channelMeanAsync('cpu', y, trappedShape(small, () => transfer(y))), lengthError('x', len));
    });

    it('addon: an options getter transferring x, g or out after they were checked -> RangeError', async function () {
      if (!addon) this.skip();
      const x = ramp(64 * 64);
      const opts = (effect: () => void) => ({ get alignCorners() { effect(); return false; } });
      assert.throws(() => addon!.resizeBilinear('cpu', x, 1, 64, 64, 128, 128, opts(() => transfer(x))), lengthError('x', 64 * 64));
      const x2 = ramp(64 * 64);
      const out = new Float32Array(128 * 128);
      await assert.rejects(
        addon.resizeBilinearAsync('cpu', x2, 1, 64, 64, 128, 128, opts(() => transfer(out)), out),
        lengthError('out', 128 * 128),
      );
      const a = ramp(len);
      const g = ramp(len);
      const tail = { outH: 32, outW: 32, get relu() { transfer(g); return true; } };
      assert.throws(() => addon!.gradcamTail('cpu', a, g, small, tail), lengthError('g', len));
    });

    it('addon: a getter shrinking a resizable buffer -> RangeError; growing it back in time is fine', function () {
      if (!addon) this.skip();
      const rab = resizable(len * 4);
      if (!rab) this.skip();
      const x = new Float32Array(rab); // length-tracking
      x.fill(2);
      assert.throws(() => addon!.channelMean('cpu', x, trappedShape(small, () => rab.resize(4))), lengthError('x', len, 1));
      rab.resize(len * 4);
      x.fill(2);
      const got = addon.channelMean('cpu', x, trappedShape(small, () => { rab.resize(4); rab.resize(len * 4); x.fill(2); }));
      assert.ok(got.every((v) => v === 2));
    });

    for (const device of ['cpu', 'js'] as const) {
      it(`getKernels('${device}'): getters run once, before the arrays are checked: RangeError for the detached array`, async function () {
        if (!devices.includes(device)) this.skip();
        const K = getKernels(device);
        const x = ramp(len);
        assert.throws(() => K.sync.channelMean(x, trappedShape(small, () => transfer(x))), lengthError('x', len));
        const y = ramp(len);
        await assert.rejects(K.async.channelMean(y, trappedShape(small, () => transfer(y))), lengthError('x', len));
        // a getter that returns a different value on each read: the kernel gets the value that was checked
        let reads = 0;
        const shifty = { ...small, get n() { return ++reads === 1 ? 2 : 1000; } };
        const z = ramp(len);
        assert.deepEqual(K.sync.channelMean(z, shifty), reference.channelMean(z, small));
        assert.equal(reads, 1);
      });
    }
  });

  describe('camTail and the picture kernels (arrays of arrays, Uint8Array inputs and outputs)', function () {
    // R = 2 rounds of 4 MiB gradients with the fused guided product: long enough for transfers to land mid-call
    const s: FeatureShape = { n: 1, k: 16, h: 256, w: 256, layout: 'nchw' };
    const count = 16 * 256 * 256;
    const guideLen = 3 * 128 * 128;
    const camCase = () => {
      const a = ramp(count);
      const grads = [ramp(count).map((v) => v - 0.3), ramp(count).map((v) => 0.7 - v)];
      const inputGrads = [ramp(guideLen), ramp(guideLen).map((v) => -v)];
      const combine: CamCombine = { kind: 'weights', weighting: 'grad-pp' };
      const guide: CamGuide = { inputGrads, c: 3, layout: 'nhwc' };
      return { a, grads, inputGrads, combine, guide, options: { outH: 128, outW: 128 } };
    };
    const assertClose = (got: CamTailResult, want: CamTailResult) => {
      assert.equal(got.rounds, want.rounds);
      for (const key of ['weights', 'lowresRaw', 'lowres', 'map', 'guided'] as const) {
        const [g, w] = [got[key]!, want[key]!];
        assert.equal(g.length, w.length, key);
        assert.ok(g.every((v, i) => Math.abs(v - w[i]) <= 1e-5 * Math.max(1, Math.abs(w[i]))), key);
      }
    };

    for (const device of ['cpu', 'js'] as const) {
      it(`${device}: camTail (Promise) with grads[1], guide.inputGrads[0] and a transferred mid-call has the inputs' numbers`, async function () {
        if (!devices.includes(device)) this.skip();
        const c = camCase();
        const want = reference.camTail(c.a, c.grads, s, c.combine, c.options, c.guide);
        const p = getKernels(device).async.camTail(c.a, c.grads, s, c.combine, c.options, c.guide);
        transferAndScribble(c.grads[1]);
        transferAndScribble(c.inputGrads[0]);
        transferAndScribble(c.a);
        churn();
        assertClose(await p, want);
      });

      it(`${device}: camTail with given weights (Promise), every weights[r] transferred mid-call`, async function () {
        if (!devices.includes(device)) this.skip();
        const a = ramp(count);
        const weights = [ramp(16), ramp(16).map((v) => 1 - v)];
        const combine: CamCombine = { kind: 'given-weights', weights };
        const want = reference.camTail(a, null, s, combine, { outH: 64, outW: 64 });
        const p = getKernels(device).async.camTail(a, null, s, combine, { outH: 64, outW: 64 });
        for (const w of weights) transferAndScribble(w);
        churn();
        const got = await p;
        for (const key of ['weights', 'lowres', 'map'] as const) assertSame(got[key]!, want[key]!, key);
      });

      it(`${device}: showCamOnImage and greyToRgb (Promise) with their inputs transferred mid-call give the inputs' bytes`, async function () {
        if (!devices.includes(device)) this.skip();
        const K = getKernels(device).async;
        const [n, H, W] = [2, 512, 512];
        const images = ramp(n * H * W * 3);
        const maps = ramp(n * H * W).map((v) => 1 - v);
        const want = reference.showCamOnImage(images, maps, n, H, W, { channels: 4, imageWeight: 0.3 });
        const p = K.showCamOnImage(images, maps, n, H, W, { channels: 4, imageWeight: 0.3 });
        transferAndScribble(images);
        transferAndScribble(maps);
        const grey = new Uint8Array(n * H * W).map((_, i) => i % 251);
        const wantGrey = reference.greyToRgb(grey, n, H, W);
        const pg = K.greyToRgb(grey, n, H, W);
        transferAndScribble(grey);
        churn();
        const bytesEqual = (got: Uint8Array, w: Uint8Array, what: string) =>
          assert.ok(got instanceof Uint8Array && Buffer.from(got.buffer, got.byteOffset, got.length).equals(Buffer.from(w)), what);
        bytesEqual(await p, want, 'showCamOnImage');
        bytesEqual(await pg, wantGrey, 'greyToRgb');
        // the check of images <= 1 reads the values (on a Promise call: the copy)
        const bad = ramp(n * H * W * 3);
        bad[5] = 2;
        await assert.rejects(K.showCamOnImage(bad, ramp(n * H * W), n, H, W), {
          name: 'RangeError',
          message: `Expected float RGB values in [0, 1] for images but received Float32Array(${n * H * W * 3})`,
        });
      });
    }

    it('addon (sync and Promise): getters on combine, guide and options detaching an array -> RangeError naming it', async function () {
      if (!addon) this.skip();
      const opts = { outH: 128, outW: 128 };
      for (const mode of ['sync', 'async'] as const) {
        const call = (...args: Parameters<NativeAddon['camTail']> extends [unknown, ...infer R] ? R : never) =>
          mode === 'sync' ? Promise.resolve().then(() => addon!.camTail('cpu', ...args)) : addon!.camTailAsync('cpu', ...args);
        // a getter on combine transferring grads[1] (before the arrays are checked)
        let c = camCase();
        const combine = { kind: 'weights', get weighting() { transfer(c.grads[1]); return 'grad-pp'; } } as CamCombine;
        await assert.rejects(call(c.a, c.grads, s, combine, opts, c.guide), lengthError('grads[1]', count));
        // a getter on guide transferring a
        c = camCase();
        const guide = { inputGrads: c.inputGrads, c: 3, get layout() { transfer(c.a); return 'nhwc'; } } as CamGuide;
        await assert.rejects(call(c.a, c.grads, s, c.combine, opts, guide), lengthError('a', count));
        // options.relu is read after the arrays were checked: caught when their memory is taken
        c = camCase();
        const late = { ...opts, get relu() { transfer(c.inputGrads[1]); return true; } };
        await assert.rejects(call(c.a, c.grads, s, c.combine, late, c.guide), lengthError('guide.inputGrads[1]', guideLen));
        c = camCase();
        const w = [ramp(16)];
        const lateW = { ...opts, get alignCorners() { transfer(w[0]); return false; } };
        await assert.rejects(call(c.a, null, s, { kind: 'given-weights', weights: w }, lateW), lengthError('combine.weights[0]', 16));
      }
      // showCamOnImage: an options getter transferring images after it was checked
      const images = ramp(3 * 64 * 64);
      const o = { get imageWeight() { transfer(images); return 0.5; } };
      assert.throws(() => addon!.showCamOnImage('cpu', images, ramp(64 * 64), 1, 64, 64, o), lengthError('images', 3 * 64 * 64));
      const images2 = ramp(3 * 64 * 64);
      const o2 = { get colormap() { transfer(images2); return 'turbo' as const; } };
      await assert.rejects(addon.showCamOnImageAsync('cpu', images2, ramp(64 * 64), 1, 64, 64, o2), lengthError('images', 3 * 64 * 64));
    });

    it(`getKernels: getters on camTail's combine and guide run once, before the arrays are checked`, async function () {
      for (const device of devices) {
        const K = getKernels(device);
        const c = camCase();
        let reads = 0;
        const guide = { inputGrads: c.inputGrads, c: 3, get layout() { reads++; transfer(c.grads[0]); return 'nhwc'; } } as CamGuide;
        await assert.rejects(K.async.camTail(c.a, c.grads, s, c.combine, c.options, guide), lengthError('grads[0]', count), device);
        assert.equal(reads, 1, device);
      }
    });
  });

  describe('an out array aliasing an input through a cloned SharedArrayBuffer', function () {
    const x8x8 = () => {
      const sab = new SharedArrayBuffer(4 * 256);
      const x = new Float32Array(sab, 0, 64);
      for (let i = 0; i < 64; i++) x[i] = i + 1;
      // the same memory through another SharedArrayBuffer object: `out.buffer !== x.buffer`
      const out = new Float32Array(structuredClone(sab), 4 * 8, 96);
      return { x, out };
    };

    it("js (sync and Promise): the same numbers as without aliasing", async function () {
      const want = reference.resizeBilinear(x8x8().x.slice(), 1, 8, 8, 8, 12);
      const K = getKernels('js');
      let { x, out } = x8x8();
      assert.equal(K.sync.resizeBilinear(x, 1, 8, 8, 8, 12, undefined, out), out);
      assert.deepEqual(Array.from(out), Array.from(want));
      ({ x, out } = x8x8());
      assert.equal(await K.async.resizeBilinear(x, 1, 8, 8, 8, 12, undefined, out), out);
      assert.deepEqual(Array.from(out), Array.from(want));
    });

    it('cpu: rejected as overlapping (the addon compares addresses)', async function () {
      if (!devices.includes('cpu')) this.skip();
      const K = getKernels('cpu');
      const { x, out } = x8x8();
      const err = { name: 'RangeError', message: 'Expected Float32Array not overlapping x for out but received Float32Array(96)' };
      assert.throws(() => K.sync.resizeBilinear(x, 1, 8, 8, 8, 12, undefined, out), err);
      await assert.rejects(K.async.resizeBilinear(x, 1, 8, 8, 8, 12, undefined, out), err);
    });
  });

  describe('a valid output too large for the memory', function () {
    /** Runs `script` in a child limited to `kb` of address space; each device and mode it prints failed with ALLOCATION_FAILED. */
    const assertAllocationFailures = (script: string, kb: number): void => {
      const r = spawnSync('sh', ['-c', `ulimit -v ${kb} && exec "$0" -e "$1"`, process.execPath, script], {
        encoding: 'utf8',
        env: { ...process.env, GRADCAM_QUIET: '1' },
        timeout: 20000,
      });
      assert.equal(r.status, 0, `child: ${r.stderr.slice(0, 2000)}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
      assert.deepEqual(Object.keys(res).length, devices.length * 2);
      for (const [what, v] of Object.entries(res)) {
        assert.match(v, /^RangeError ALLOCATION_FAILED gradcam-node: could not allocate /, what);
      }
    };

    it('throws RangeError ALLOCATION_FAILED on every device, sync and Promise (child process under ulimit -v)', function () {
      if (process.platform !== 'linux') this.skip();
      const index = path.join(__dirname, '..', 'lib', 'kernels', 'index.js');
      const script = `
        const { getKernels } = require(${JSON.stringify(index)});
        (async () => {
          const res = {};
          for (const dev of ${JSON.stringify(devices)}) for (const mode of ['sync', 'async']) {
            try { await getKernels(dev)[mode].resizeBilinear(new Float32Array(1), 1, 1, 1, 46341, 46340); res[dev + '.' + mode] = 'allocated'; }
            catch (e) { res[dev + '.' + mode] = e.name + ' ' + e.code + ' ' + e.message; }
          }
          console.log(JSON.stringify(res));
          process.exit(0);
        })();`;
      // 4 GB of address space: Node runs, an 8 GiB array cannot be had
      assertAllocationFailures(script, 4000000);
    });

    it('a picture kernel (greyToRgb: 2 GB of bytes from 0.7 GB) throws ALLOCATION_FAILED too, sync and Promise', function () {
      if (process.platform !== 'linux') this.skip();
      const index = path.join(__dirname, '..', 'lib', 'kernels', 'index.js');
      const script = `
        const { getKernels } = require(${JSON.stringify(index)});
        (async () => {
          // the 'js' worker first: a worker's isolate cannot start under this limit once the input is there
          await getKernels('js').async.greyToRgb(new Uint8Array(1), 1, 1, 1);
          const grey = new Uint8Array(715000000);
          const res = {};
          for (const dev of ${JSON.stringify(devices)}) for (const mode of ['sync', 'async']) {
            try { await getKernels(dev)[mode].greyToRgb(grey, 1, 1000, 715000); res[dev + '.' + mode] = 'allocated'; }
            catch (e) { res[dev + '.' + mode] = e.name + ' ' + e.code + ' ' + e.message; }
          }
          console.log(JSON.stringify(res));
          process.exit(0);
        })();`;
      // 2.6 GB of address space: Node and the 0.7 GB input fit, the 2.1 GB output does not
      assertAllocationFailures(script, 2600000);
    });
  });
});
