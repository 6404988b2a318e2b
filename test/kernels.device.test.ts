/**
 * Kernel device selection (getKernels / kernelInfo): the fallback order, the one-time warning,
 * errors for unavailable or unknown devices, and the 'js' Promise API running off the main thread.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { GradcamError } from '../lib/errors';
import { getKernels, kernelInfo } from '../lib/kernels';
import { reference } from '../lib/kernels/reference';
import type { FeatureShape } from '../lib/kernels/types';
import { NO_REFERENCE, skipBecause } from './helpers/skip';

type KernelsModule = typeof import('../lib/kernels');

/** A fresh copy of lib/kernels/index (its once-per-process state reset); native.ts stays loaded. */
function freshKernels(): KernelsModule {
  const p = require.resolve('../lib/kernels');
  delete require.cache[p];
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(p) as KernelsModule;
}

function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
  };
  try {
    return { result: fn(), warnings };
  } finally {
    console.warn = original;
  }
}

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const old = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  }
}

function seeded(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

const info = kernelInfo();
const nativeLoaded = info.native.loaded;
const cudaAvailable = nativeLoaded && info.native.cuda.available;

describe('kernels: device selection', () => {
  it('an unknown device is a RangeError naming `device` (TypeError when not a string)', () => {
    assert.throws(
      () => getKernels('gpu' as never),
      (e: unknown) =>
        e instanceof RangeError && e.message === "Expected one of 'auto', 'cuda', 'cpu', 'js' for device but received 'gpu' of type string",
    );
    assert.throws(
      () => getKernels(1 as never),
      (e: unknown) => e instanceof TypeError && e.message === "Expected one of 'auto', 'cuda', 'cpu', 'js' for device but received 1 of type number",
    );
    assert.throws(() => getKernels(null as never), TypeError);
  });

  it("'cuda' without a usable GPU is a GradcamError saying why (never a silent fallback)", function () {
    if (cudaAvailable) {
      assert.equal(getKernels('cuda').device, 'cuda');
      return;
    }
    assert.throws(
      () => getKernels('cuda'),
      (e: unknown) =>
        e instanceof GradcamError &&
        e.code === 'ENOCUDA' &&
        e.message.startsWith("gradcam-node: device 'cuda' requested but CUDA kernels are unavailable: ") &&
        e.message.length > "gradcam-node: device 'cuda' requested but CUDA kernels are unavailable: ".length,
    );
  });

  it("'cpu' is the addon's CPU kernels, or a GradcamError when the addon is not built", () => {
    if (nativeLoaded) {
      const k = getKernels('cpu');
      assert.equal(k.device, 'cpu');
      assert.equal(k.reason, 'requested');
      assert.deepEqual(Array.from(k.sync.channelMean(new Float32Array([1, 2, 3, 4]), { n: 1, k: 2, h: 1, w: 2, layout: 'nchw' })), [1.5, 3.5]);
    } else {
      assert.throws(
        () => getKernels('cpu'),
        (e: unknown) => e instanceof GradcamError && e.code === 'NATIVE_UNAVAILABLE' && /native addon is not loaded/.test(e.message),
      );
    }
  });

  it("'js' always works and is the TypeScript reference", async () => {
    const k = getKernels('js');
    assert.equal(k.device, 'js');
    assert.equal(k.reason, 'requested');
    assert.equal(getKernels('js'), k, 'cached');
    const shape: FeatureShape = { n: 2, k: 3, h: 4, w: 5, layout: 'nhwc' };
    const g = seeded(120, 1);
    assert.deepEqual(k.sync.channelMean(g, shape), reference.channelMean(g, shape));
    assert.deepEqual(await k.async.channelMean(g, shape), reference.channelMean(g, shape));
  });

  it('auto picks cuda, else native cpu when the addon is built, else js; kernelInfo() reports it', () => {
    const k = getKernels();
    assert.equal(getKernels('auto'), k);
    const expected = cudaAvailable ? 'cuda' : nativeLoaded ? 'cpu' : 'js';
    assert.equal(k.device, expected);
    assert.equal(kernelInfo().auto, expected);
    if (expected === 'cpu') assert.match(k.reason, /^CUDA unavailable: ./);
    if (expected === 'js') assert.match(k.reason, /^native addon not loaded: ./);
    assert.equal(typeof kernelInfo().native.cuda.reason, 'string');
  });

  it('auto warns once, saying what it chose and why; GRADCAM_QUIET=1 silences it', function () {
    if (cudaAvailable) skipBecause(this, 'a CUDA device is available: no fallback warning to check');
    const mod = freshKernels();
    const { result, warnings } = withEnv('GRADCAM_QUIET', undefined, () =>
      captureWarnings(() => {
        mod.getKernels('js'); // an explicit request does not warn
        const first = mod.getKernels();
        mod.getKernels('auto');
        mod.getKernels();
        return first;
      }),
    );
    assert.equal(warnings.length, 1, `one warning, got ${JSON.stringify(warnings)}`);
    const words = result.device === 'cpu' ? 'native CPU' : 'TypeScript';
    assert.ok(warnings[0].startsWith(`gradcam-node: kernels on ${words}`), warnings[0]);
    assert.ok(warnings[0].includes(result.reason), `${warnings[0]} should give the reason ${result.reason}`);

    const quiet = freshKernels();
    const q = withEnv('GRADCAM_QUIET', '1', () => captureWarnings(() => quiet.getKernels()));
    assert.equal(q.warnings.length, 0);
    assert.equal(q.result.device, result.device);
  });

  it('without the addon (GRADCAM_DISABLE_NATIVE=1): auto falls back to js with one warning; cpu and cuda are errors', () => {
    const index = path.join(__dirname, '..', 'lib', 'kernels', 'index.js');
    const script = `
      const { getKernels, kernelInfo } = require(${JSON.stringify(index)});
      const out = { auto: getKernels().device, again: getKernels('auto').device, info: kernelInfo().auto, loaded: kernelInfo().native.loaded };
      for (const d of ['cpu', 'cuda']) {
        try { getKernels(d); out[d] = 'no error'; } catch (e) { out[d] = e.name + ' ' + e.code + ': ' + e.message; }
      }
      out.sum = Array.from(getKernels().sync.channelMean(new Float32Array([1, 2, 3, 4]), { n: 1, k: 1, h: 2, w: 2, layout: 'nchw' }));
      console.log(JSON.stringify(out));`;
    const env: NodeJS.ProcessEnv = { ...process.env, GRADCAM_DISABLE_NATIVE: '1' };
    delete env.GRADCAM_QUIET;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000, env });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim());
    assert.equal(out.auto, 'js');
    assert.equal(out.again, 'js');
    assert.equal(out.info, 'js');
    assert.equal(out.loaded, false);
    assert.deepEqual(out.sum, [2.5]);
    assert.match(out.cpu, /^GradcamError NATIVE_UNAVAILABLE: gradcam-node: device 'cpu' requested but the native addon is not loaded: .*GRADCAM_DISABLE_NATIVE/);
    assert.match(out.cuda, /^GradcamError ENOCUDA: gradcam-node: device 'cuda' requested but CUDA kernels are unavailable: /);
    const warnings = run.stderr.split('\n').filter((l) => l.startsWith('gradcam-node:'));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0], /^gradcam-node: kernels on TypeScript \(native addon not loaded: .*GRADCAM_DISABLE_NATIVE=1.*\)$/);
  });
});

describe("kernels: the 'js' Promise API runs in worker threads", () => {
  // a call whose compute dwarfs its input copy: 16 maps 14x14 -> 448x448, normalized twice
  const shape: FeatureShape = { n: 16, k: 64, h: 14, w: 14, layout: 'nchw' };
  const a = seeded(16 * 64 * 14 * 14, 3).map(Math.abs);
  const g = seeded(16 * 64 * 14 * 14, 4);
  const options = { outH: 448, outW: 448 };

  it('does not block the event loop', async () => {
    const k = getKernels('js');
    await k.async.channelMean(g, shape); // start a worker first
    const t0 = performance.now();
    const expected = reference.gradcamTail(a, g, shape, options);
    const syncMs = performance.now() - t0;

    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 1);
    const start = performance.now();
    const pending = k.async.gradcamTail(a, g, shape, options);
    const returnedAfter = performance.now() - start;
    const result = await pending;
    clearInterval(timer);

    assert.deepEqual(result.map, expected.map);
    assert.deepEqual(result.weights, expected.weights);
    assert.ok(returnedAfter < syncMs / 2, `the call returned after ${returnedAfter.toFixed(1)} ms; the kernel takes ${syncMs.toFixed(1)} ms`);
    assert.ok(ticks >= 3, `the event loop ticked ${ticks} times while the kernel ran (sync: ${syncMs.toFixed(1)} ms)`);
    assert.ok(maxGap < syncMs / 2, `longest event-loop stall ${maxGap.toFixed(1)} ms vs ${syncMs.toFixed(1)} ms for the kernel`);
  });

  it('runs many calls at once, each with its own result', async () => {
    const k = getKernels('js');
    const inputs = Array.from({ length: 9 }, (_, i) => seeded(3 * 7 * 7, 100 + i));
    const results = await Promise.all(inputs.map((x) => k.async.resizeBilinear(x, 3, 7, 7, 20, 30)));
    results.forEach((r, i) => assert.deepEqual(r, reference.resizeBilinear(inputs[i], 3, 7, 7, 20, 30)));
    const sums = await k.async.channelSums(g, a, shape);
    assert.deepEqual(sums, reference.channelSums(g, a, shape));
  });

  it('writes results into the caller\'s `out` arrays (the worker computes on its own copy)', async () => {
    const js = getKernels('js');
    const x = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 7) % 5);
    const cam = new Float32Array(2 * 6 * 8).fill(NaN);
    assert.equal(await js.async.resizeBilinear(x, 2, 3, 4, 6, 8, { alignCorners: true }, cam), cam);
    assert.deepEqual(cam, reference.resizeBilinear(x, 2, 3, 4, 6, 8, { alignCorners: true }));
    const g = Float32Array.from({ length: 2 * 6 * 8 * 3 }, (_, i) => Math.sin(i));
    const out = new Float32Array(g.length);
    assert.equal(await js.async.guidedProduct(g, cam, 2, 3, 6, 8, 'nhwc', out), out);
    assert.deepEqual(out, reference.guidedProduct(g, cam, 2, 3, 6, 8, 'nhwc'));
    await assert.rejects(js.async.guidedProduct(g, cam, 2, 3, 6, 8, 'nhwc', g), { name: 'RangeError', message: 'Expected Float32Array not overlapping guided for out but received Float32Array(288)' });
  });

  it('idle workers do not keep the process alive', () => {
    const index = path.join(__dirname, '..', 'lib', 'kernels', 'index.js');
    const script = `
      const { getKernels } = require(${JSON.stringify(index)});
      getKernels('js').async.minMaxNormalize(new Float32Array([1, 2, 3]), 1, 3)
        .then((r) => console.log(JSON.stringify(Array.from(r))));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.status, 0, `exit status ${run.status} signal ${run.signal}: ${run.stderr}`);
    assert.deepEqual(JSON.parse(run.stdout.trim()), [0, 0.5, 1]);
  });
});
