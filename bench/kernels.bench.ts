/**
 * Kernel benchmark: every CAM kernel at pipeline sizes, on
 *   native-cpu / native-cuda  the addon (getKernels('cpu' | 'cuda').sync), when built
 *   ts                        the TypeScript reference (lib/kernels/reference.ts)
 *   tfjs-<backend>            the tfjs operations a user would otherwise write (tf.mean, tf.sum,
 *                             tf.mul, tf.image.resizeBilinear with halfPixelCenters ...) on the
 *                             fastest installed backend: tfjs-node, else wasm, else cpu
 *   copy-set / copy-buffer    a memory-bandwidth baseline measured in the same run: copying a
 *                             buffer with Float32Array.prototype.set / Buffer.copy into a warm one
 *   copy-alloc                the same copy into a freshly allocated array (Float32Array.slice):
 *                             what every call that returns a new array pays (page faults, zeroing)
 *   native-*-async            (--async) the Promise API, calls awaited one after the other: the
 *                             inputs are copied into native memory first (native/README.md)
 *   native-*-async-shared     (--async) the same with the inputs on a SharedArrayBuffer, which
 *                             the addon uses in place: the cost of the Promise API without the
 *                             copy, so async / async-shared is the cost of the copy
 *
 * Bytes moved = the bytes a kernel must read plus the bytes it must write (float32 inputs and
 * outputs, intermediates not counted). The copy baseline copies a buffer of half that size, so
 * it reads + writes the same number of bytes; gbPerSec = bytes moved * ops/s / 1e9 for all rows.
 * tfjs timings start from tensors already on the backend and include reading the result back
 * (dataSync), since the kernels return Float32Arrays.
 *
 * Usage: node dist/bench/kernels.bench.js [--json] [--quick] [--kernel=resize,tail] [--backend=ts,native]
 *        [--n=1,32] [--k=512] [--map=7,14] [--layout=nchw|nhwc] [--max-time=0.3] [--rounds=3] [--no-tfjs] [--async]
 *   --json    one JSON object per line (type 'result' rows, then type 'goal' rows)
 *   --quick   only the goal cases: the fused tail and resize + guided product at N = 32
 *   --max-time seconds per backend and case, split over --rounds interleaved rounds (the
 *              backends of a case take turns, so machine load falls on all alike); a row gives
 *              the median round (opsPerSec) and the fastest sample (bestOpsPerSec)
 */

import Benchmark from 'benchmark';
import { getKernels, kernelInfo } from '../lib/kernels';
import { reference } from '../lib/kernels/reference';
import type { FeatureShape, KernelsAsync, KernelsSync, Layout } from '../lib/kernels/types';

// ---------------------------------------------------------------------------------------------
// options

interface Options {
  json: boolean;
  quick: boolean;
  kernels: string[] | null;
  backends: string[] | null;
  ns: number[];
  ks: number[];
  maps: number[];
  layout: Layout;
  maxTime: number;
  rounds: number;
  tfjs: boolean;
  async: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    json: false,
    quick: false,
    kernels: null,
    backends: null,
    ns: [1, 32],
    ks: [512, 1280, 2048],
    maps: [7, 14, 28],
    layout: 'nchw',
    maxTime: 0.3,
    rounds: 3,
    tfjs: true,
    async: false,
  };
  const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
  const nums = (v: string): number[] => list(v).map(Number);
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=');
    switch (key) {
      case '--json': o.json = true; break;
      case '--quick': o.quick = true; break;
      case '--kernel': o.kernels = list(value).map((s) => s.toLowerCase()); break;
      case '--backend': o.backends = list(value).map((s) => s.toLowerCase()); break;
      case '--n': o.ns = nums(value); break;
      case '--k': o.ks = nums(value); break;
      case '--map': o.maps = nums(value); break;
      case '--layout': o.layout = value === 'nhwc' ? 'nhwc' : 'nchw'; break;
      case '--max-time': o.maxTime = Number(value); break;
      case '--rounds': o.rounds = Math.max(1, Math.floor(Number(value)) || 1); break;
      case '--no-tfjs': o.tfjs = false; break;
      case '--async': o.async = true; break;
      case '--help':
        console.log('usage: kernels.bench [--json] [--quick] [--kernel=a,b] [--backend=a,b] [--n=1,32] [--k=512,1280,2048] [--map=7,14,28] [--layout=nchw|nhwc] [--max-time=s] [--rounds=3] [--no-tfjs]');
        process.exit(0);
        break;
      default:
        console.error(`kernels.bench: unknown option ${arg} (try --help)`);
        process.exit(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// cases

type KernelName =
  | 'channelMean'
  | 'channelSums'
  | 'weightedChannelSum'
  | 'elementwiseChannelSum'
  | 'resizeBilinear'
  | 'minMaxNormalize'
  | 'guidedProduct'
  | 'gradcamTail'
  | 'camTail-top3'
  | 'gradcamTail-x3'
  | 'resizeGuided';

/** camTail with R = 3 rounds (top-3 classes of one batch) against three gradcamTail calls. */
const TOP3_KERNELS: KernelName[] = ['camTail-top3', 'gradcamTail-x3'];
const FEATURE_KERNELS: KernelName[] = ['channelMean', 'channelSums', 'weightedChannelSum', 'elementwiseChannelSum', 'gradcamTail', ...TOP3_KERNELS];
const MAP_KERNELS: KernelName[] = ['resizeBilinear', 'minMaxNormalize', 'guidedProduct', 'resizeGuided'];
const OUT = 224;
const GUIDED_C = 3;

interface Case {
  kernel: KernelName;
  n: number;
  k: number;
  h: number;
  w: number;
  H: number;
  W: number;
  c: number;
  layout: Layout;
}

function cases(o: Options): Case[] {
  const out: Case[] = [];
  const wanted = (k: KernelName): boolean => !o.kernels || o.kernels.some((s) => k.toLowerCase().includes(s));
  const ns = o.quick ? [32] : o.ns;
  for (const kernel of [...FEATURE_KERNELS, ...MAP_KERNELS]) {
    if (!wanted(kernel)) continue;
    if (o.quick && kernel !== 'gradcamTail' && kernel !== 'resizeGuided' && !TOP3_KERNELS.includes(kernel)) continue;
    for (const n of ns) {
      if (FEATURE_KERNELS.includes(kernel)) {
        for (const k of o.ks) for (const m of o.maps) out.push({ kernel, n, k, h: m, w: m, H: OUT, W: OUT, c: 0, layout: o.layout });
      } else {
        // minMaxNormalize and guidedProduct work at the output size: one case per n
        const maps = kernel === 'minMaxNormalize' || kernel === 'guidedProduct' ? [OUT] : o.maps;
        for (const m of maps) {
          out.push({ kernel, n, k: 0, h: m, w: m, H: OUT, W: OUT, c: kernel === 'guidedProduct' || kernel === 'resizeGuided' ? GUIDED_C : 0, layout: o.layout });
        }
      }
    }
  }
  return out;
}

/** float32 values read + written by the kernel (intermediates not counted). */
function valuesMoved(c: Case): number {
  const { n, k, h, w, H, W } = c;
  const feat = n * k * h * w;
  switch (c.kernel) {
    case 'channelMean': return feat + n * k;
    case 'channelSums': return 2 * feat + 5 * n * k;
    case 'weightedChannelSum': return n * k + feat + n * h * w;
    case 'elementwiseChannelSum': return 2 * feat + n * h * w;
    case 'gradcamTail': return 2 * feat + n * k + 2 * n * h * w + n * H * W;
    // A read once (camTail) or three times (gradcamTail-x3): counted as the bytes of the task, once
    case 'camTail-top3':
    case 'gradcamTail-x3': return 4 * feat + 3 * (n * k + 2 * n * h * w + n * H * W);
    case 'resizeBilinear': return n * h * w + n * H * W;
    case 'minMaxNormalize': return 2 * n * H * W;
    case 'guidedProduct': return 2 * n * c.c * H * W + n * H * W;
    case 'resizeGuided': return n * h * w + 2 * n * c.c * H * W;
  }
}

function describeCase(c: Case): string {
  const feat = c.k ? `k=${c.k} ` : c.c ? `c=${c.c} ` : '';
  const size = c.kernel === 'minMaxNormalize' || c.kernel === 'guidedProduct' ? `${c.H}x${c.W}` : `${c.h}x${c.w}->${c.H}x${c.W}`;
  return `${c.kernel} n=${c.n} ${feat}${size}`;
}

// ---------------------------------------------------------------------------------------------
// inputs

function randomArray(len: number, seed: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((hi - lo) * s) / 4294967296;
  }
  return a;
}

interface Inputs {
  shape: FeatureShape;
  a: Float32Array;
  g: Float32Array;
  weights: Float32Array;
  lowres: Float32Array; // [n,h,w]
  cam: Float32Array; // [n,H,W]
  guided: Float32Array; // [n,c,H,W]
  grads3: Float32Array[]; // three rounds of g
}

const EMPTY = new Float32Array(0);

function makeInputs(c: Case): Inputs {
  const feature = FEATURE_KERNELS.includes(c.kernel);
  const feat = c.n * c.k * c.h * c.w;
  return {
    shape: { n: c.n, k: Math.max(c.k, 1), h: c.h, w: c.w, layout: c.layout },
    a: feature ? randomArray(feat, 1, 0, 6) : EMPTY,
    g: feature ? randomArray(feat, 2, -0.01, 0.01) : EMPTY,
    weights: feature ? randomArray(c.n * c.k, 3) : EMPTY,
    lowres: randomArray(c.n * c.h * c.w, 4, 0, 1),
    cam: c.kernel === 'minMaxNormalize' || c.kernel === 'guidedProduct' ? randomArray(c.n * c.H * c.W, 5, 0, 1) : EMPTY,
    guided: c.c ? randomArray(c.n * c.c * c.H * c.W, 6) : EMPTY,
    grads3: TOP3_KERNELS.includes(c.kernel) ? [7, 8, 9].map((seed) => randomArray(feat, seed, -0.01, 0.01)) : [],
  };
}

/** One call of the kernel on a KernelsSync implementation. */
function kernelCall(K: KernelsSync, c: Case, x: Inputs): () => unknown {
  const { n, h, w, H, W } = c;
  switch (c.kernel) {
    case 'channelMean': return () => K.channelMean(x.g, x.shape);
    case 'channelSums': return () => K.channelSums(x.g, x.a, x.shape);
    case 'weightedChannelSum': return () => K.weightedChannelSum(x.weights, x.a, x.shape, true);
    case 'elementwiseChannelSum': return () => K.elementwiseChannelSum(x.g, x.a, x.shape, 'grad-times-act', true);
    case 'gradcamTail': return () => K.gradcamTail(x.a, x.g, x.shape, { outH: H, outW: W });
    case 'camTail-top3':
      return () => K.camTail(x.a, x.grads3, x.shape, { kind: 'weights', weighting: 'grad-mean' }, { outH: H, outW: W });
    case 'gradcamTail-x3':
      return () => x.grads3.map((g) => K.gradcamTail(x.a, g, x.shape, { outH: H, outW: W }));
    case 'resizeBilinear': return () => K.resizeBilinear(x.lowres, n, h, w, H, W);
    case 'minMaxNormalize': return () => K.minMaxNormalize(x.cam, n, H * W);
    case 'guidedProduct': return () => K.guidedProduct(x.guided, x.cam, n, c.c, H, W, c.layout);
    case 'resizeGuided':
      return () => K.guidedProduct(x.guided, K.resizeBilinear(x.lowres, n, h, w, H, W), n, c.c, H, W, c.layout);
  }
}

/**
 * The same call writing into output arrays allocated once (the kernels' optional `out`), as a
 * pipeline reusing its buffers runs it; undefined for kernels without an `out` argument.
 */
function kernelCallInto(K: KernelsSync, c: Case, x: Inputs): (() => unknown) | undefined {
  const { n, h, w, H, W } = c;
  const cam = new Float32Array(n * H * W);
  const out = new Float32Array(n * c.c * H * W);
  switch (c.kernel) {
    case 'resizeBilinear': return () => K.resizeBilinear(x.lowres, n, h, w, H, W, undefined, cam);
    case 'guidedProduct': return () => K.guidedProduct(x.guided, x.cam, n, c.c, H, W, c.layout, out);
    case 'resizeGuided':
      return () => K.guidedProduct(x.guided, K.resizeBilinear(x.lowres, n, h, w, H, W, undefined, cam), n, c.c, H, W, c.layout, out);
    default: return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// tfjs: what a user would write

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tf = any;

async function loadTfjs(): Promise<{ tf: Tf; backend: string } | null> {
  try {
    let tf: Tf;
    try {
      require.resolve('@tensorflow/tfjs-node');
      tf = require('@tensorflow/tfjs-node');
      return { tf, backend: 'tfjs-node' };
    } catch {
      tf = require('@tensorflow/tfjs');
    }
    try {
      require('@tensorflow/tfjs-backend-wasm');
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return { tf, backend: 'tfjs-wasm' };
      }
    } catch {
      // fall through to cpu
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, backend: 'tfjs-cpu' };
  } catch {
    return null;
  }
}

/** tfjs tensors for a case (created once) and the op sequence that mirrors the kernel. */
function tfjsCall(tf: Tf, c: Case, x: Inputs): { run: () => void; dispose: () => void } {
  const { n, k, h, w, H, W } = c;
  const nchw = c.layout === 'nchw';
  const tensors: Tf[] = [];
  const keep = <T>(t: T): T => {
    tensors.push(t);
    return t;
  };
  const featShape = nchw ? [n, k, h, w] : [n, h, w, k];
  const spatial = nchw ? [2, 3] : [1, 2];
  const chAxis = nchw ? 1 : 3;
  const feature = FEATURE_KERNELS.includes(c.kernel);
  const a = feature ? keep(tf.tensor(x.a, featShape)) : null;
  const g = feature ? keep(tf.tensor(x.g, featShape)) : null;
  const weights = feature ? keep(tf.tensor(x.weights, nchw ? [n, k, 1, 1] : [n, 1, 1, k])) : null;
  const lowres = keep(tf.tensor(x.lowres, [n, h, w, 1]));
  const cam = x.cam.length ? keep(tf.tensor(x.cam, [n, H, W])) : null;
  const guided = x.guided.length ? keep(tf.tensor(x.guided, nchw ? [n, c.c, H, W] : [n, H, W, c.c])) : null;
  const camToGuided = (m: Tf): Tf => (nchw ? m.reshape([n, 1, H, W]) : m.reshape([n, H, W, 1]));
  /** per image (x - min) / (max + 1e-7) of [n, ...] */
  const normalize = (m: Tf): Tf => {
    const flat = m.reshape([n, -1]);
    const shifted = flat.sub(flat.min(1, true));
    return shifted.div(shifted.max(1, true).add(1e-7)).reshape(m.shape);
  };
  const read = (...ts: Tf[]): void => {
    for (const t of ts) t.dataSync();
    for (const t of ts) t.dispose();
  };
  let body: () => Tf[];
  switch (c.kernel) {
    case 'channelMean':
      body = () => [g.mean(spatial)];
      break;
    case 'channelSums':
      body = () => {
        const g2 = g.square();
        return [g.sum(spatial), g2.sum(spatial), g2.mul(g).sum(spatial), a.sum(spatial), g.mul(a).sum(spatial)];
      };
      break;
    case 'weightedChannelSum':
      body = () => [tf.relu(a.mul(weights).sum(chAxis))];
      break;
    case 'elementwiseChannelSum':
      body = () => [tf.relu(g.mul(a).sum(chAxis))];
      break;
    case 'gradcamTail':
      body = () => {
        const wts = g.mean(spatial, true);
        const raw = a.mul(wts).sum(chAxis);
        const low = normalize(tf.relu(raw));
        const map = normalize(tf.image.resizeBilinear(low.reshape([n, h, w, 1]), [H, W], false, true));
        return [wts, raw, low, map];
      };
      break;
    case 'resizeBilinear':
      body = () => [tf.image.resizeBilinear(lowres, [H, W], false, true)];
      break;
    case 'minMaxNormalize':
      body = () => [normalize(cam)];
      break;
    case 'guidedProduct':
      body = () => [guided.mul(camToGuided(cam))];
      break;
    case 'resizeGuided':
      body = () => [guided.mul(camToGuided(tf.image.resizeBilinear(lowres, [H, W], false, true)))];
      break;
  }
  return {
    run: () => read(...tf.tidy(body)),
    dispose: () => tensors.forEach((t) => t.dispose()),
  };
}

// ---------------------------------------------------------------------------------------------
// running

interface Row {
  type: 'result';
  kernel: string;
  backend: string;
  layout: Layout;
  n: number;
  k: number;
  c: number;
  h: number;
  w: number;
  H: number;
  W: number;
  opsPerSec: number;
  msPerOp: number;
  /** ops/s of the fastest sample: less sensitive to other processes on a busy machine */
  bestOpsPerSec: number;
  rme: number;
  samples: number;
  bytes: number;
  gbPerSec: number;
  error?: string;
}

function measure(name: string, fn: () => unknown, maxTime: number): { hz: number; best: number; rme: number; samples: number } {
  let sink: unknown;
  const bench = new Benchmark(name, () => {
    sink = fn();
  }, { maxTime, minSamples: 1, minTime: 0.02, initCount: 1 });
  bench.run();
  if (bench.error) throw bench.error;
  void sink;
  const best = 1 / Math.min(...bench.stats.sample);
  return { hz: bench.hz, best, rme: bench.stats.rme, samples: bench.stats.sample.length };
}

/** A Promise function, awaited call after call for `maxTime` seconds (at least 3 calls). */
async function measureAsync(fn: () => Promise<unknown>, maxTime: number): Promise<{ hz: number; best: number; rme: number; samples: number }> {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < maxTime * 1000) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const sd = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, times.length - 1));
  return { hz: 1 / mean, best: 1 / Math.min(...times), rme: (100 * 1.96 * sd) / Math.sqrt(times.length) / mean, samples: times.length };
}

/** The same inputs on SharedArrayBuffers (the addon's Promise API uses those in place). */
function sharedInputs(x: Inputs): Inputs {
  const share = (a: Float32Array): Float32Array => {
    const b = new Float32Array(new SharedArrayBuffer(Math.max(4, a.byteLength)), 0, a.length);
    b.set(a);
    return b;
  };
  return { ...x, a: share(x.a), g: share(x.g), weights: share(x.weights), lowres: share(x.lowres), cam: share(x.cam), guided: share(x.guided) };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const emit = (obj: object): void => {
    process.stdout.write(JSON.stringify(obj) + '\n');
  };
  // keep stdout for JSON lines: anything the libraries print goes to stderr
  const log = console.log;
  if (o.json) console.log = console.error;
  const say = (s: string): void => {
    if (!o.json) log(s);
  };

  const wantBackend = (b: string): boolean => !o.backends || o.backends.some((s) => b.startsWith(s) || b.includes(s));
  const impls: { backend: string; K: KernelsSync; A?: KernelsAsync }[] = [];
  const info = kernelInfo();
  if (info.native.loaded && info.native.cuda.available && wantBackend('native-cuda')) impls.push({ backend: 'native-cuda', K: getKernels('cuda').sync, A: getKernels('cuda').async });
  if (info.native.loaded && wantBackend('native-cpu')) impls.push({ backend: 'native-cpu', K: getKernels('cpu').sync, A: getKernels('cpu').async });
  if (wantBackend('ts')) impls.push({ backend: 'ts', K: reference });
  const tfjs = o.tfjs && (!o.backends || o.backends.some((s) => s.startsWith('tfjs'))) ? await loadTfjs() : null;
  const copies = wantBackend('copy');

  say(`gradcam-node kernel benchmark  (node ${process.version}, ${require('node:os').cpus().length} cores, load ${require('node:os').loadavg()[0].toFixed(1)}, layout ${o.layout}, maxTime ${o.maxTime}s in ${o.rounds} rounds)`);
  say(`native addon: ${info.native.loaded ? `loaded${info.native.cuda.available ? `, CUDA ${info.native.cuda.deviceName ?? ''}` : `, no CUDA (${info.native.cuda.reason})`}` : `not loaded (${info.native.error})`}`);
  say(`tfjs: ${tfjs ? tfjs.backend : 'not used'}`);
  say('');
  const header = `${'case'.padEnd(46)} ${'backend'.padEnd(16)} ${'ops/s'.padStart(10)} ${'ms/op'.padStart(10)} ${'GB/s'.padStart(8)}  ±rme`;
  say(header);
  say('-'.repeat(header.length));

  const rows: Row[] = [];
  for (const c of cases(o)) {
    const x = makeInputs(c);
    const bytes = valuesMoved(c) * 4;
    const base = { type: 'result' as const, kernel: c.kernel, layout: c.layout, n: c.n, k: c.k, c: c.c, h: c.h, w: c.w, H: c.H, W: c.W, bytes };
    // every backend of this case, measured in turn for `rounds` rounds, so that load from other
    // processes falls on all of them alike; a row reports the median round and the best sample
    interface Candidate { backend: string; fn: () => unknown; async?: boolean; hz: number[]; best: number; rme: number[]; samples: number; error?: string }
    const candidates: Candidate[] = [];
    const add = (backend: string, fn: () => unknown, async = false): void => {
      candidates.push({ backend, fn, async, hz: [], best: 0, rme: [], samples: 0 });
    };
    for (const { backend, K } of impls) add(backend, kernelCall(K, c, x));
    if (o.async && c.kernel !== 'resizeGuided') {
      const shared = sharedInputs(x);
      for (const { backend, A } of impls) {
        if (!A) continue;
        // the Promise functions take the same arguments; kernelCall returns their Promise
        add(`${backend}-async`, kernelCall(A as unknown as KernelsSync, c, x), true);
        add(`${backend}-async-shared`, kernelCall(A as unknown as KernelsSync, c, shared), true);
      }
    }
    for (const { backend, K } of impls) {
      const into = kernelCallInto(K, c, x);
      if (into) add(`${backend}-out`, into);
    }
    let tfCall: { run: () => void; dispose: () => void } | null = null;
    const tensorsBefore = tfjs ? tfjs.tf.memory().numTensors : 0;
    if (tfjs && !TOP3_KERNELS.includes(c.kernel)) {
      try {
        tfCall = tfjsCall(tfjs.tf, c, x);
        add(tfjs.backend, tfCall.run);
      } catch (e) {
        candidates.push({ backend: tfjs.backend, fn: () => 0, hz: [], best: 0, rme: [], samples: 0, error: String((e as Error)?.message ?? e).split('\n')[0] });
      }
    }
    if (copies && !TOP3_KERNELS.includes(c.kernel)) {
      // half the bytes moved, so a copy (read + write) moves as many bytes as the kernel
      const half = Math.max(1, Math.round(bytes / 8));
      const src = randomArray(half, 9);
      const dst = new Float32Array(half);
      add('copy-set', () => dst.set(src));
      const srcBuf = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
      const dstBuf = Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength);
      add('copy-buffer', () => srcBuf.copy(dstBuf));
      let sink: Float32Array = dst;
      add('copy-alloc', () => { sink = src.slice(); });
      void sink;
    }
    for (let round = 0; round < o.rounds; round++) {
      for (const cand of candidates) {
        if (cand.error) continue;
        try {
          const m = cand.async
            ? await measureAsync(cand.fn as () => Promise<unknown>, o.maxTime / o.rounds)
            : measure(`${describeCase(c)} ${cand.backend}`, cand.fn, o.maxTime / o.rounds);
          cand.hz.push(m.hz);
          cand.rme.push(m.rme);
          cand.best = Math.max(cand.best, m.best);
          cand.samples += m.samples;
        } catch (e) {
          cand.error = String((e as Error)?.message ?? e).split('\n')[0];
        }
      }
    }
    tfCall?.dispose();
    if (tfjs) {
      const leaked = tfjs.tf.memory().numTensors - tensorsBefore;
      if (leaked !== 0) console.error(`kernels.bench: ${leaked} tfjs tensors leaked in ${describeCase(c)}`);
    }
    const median = (v: number[]): number => {
      const sorted = [...v].sort((p, q) => p - q);
      const mid = sorted.length >> 1;
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    for (const cand of candidates) {
      let row: Row;
      if (cand.error || cand.hz.length === 0) {
        row = { ...base, backend: cand.backend, opsPerSec: 0, msPerOp: 0, bestOpsPerSec: 0, rme: 0, samples: 0, gbPerSec: 0, error: cand.error ?? 'not measured' };
      } else {
        const hz = median(cand.hz);
        row = { ...base, backend: cand.backend, opsPerSec: hz, msPerOp: 1000 / hz, bestOpsPerSec: cand.best, rme: median(cand.rme), samples: cand.samples, gbPerSec: (bytes * hz) / 1e9 };
      }
      rows.push(row);
      if (o.json) emit(row);
      else {
        const v = row.error
          ? `error: ${row.error}`
          : `${row.opsPerSec.toPrecision(4).padStart(10)} ${row.msPerOp.toPrecision(4).padStart(10)} ${row.gbPerSec.toFixed(2).padStart(8)}  ±${row.rme.toFixed(1)}%`;
        say(`${describeCase(c).padEnd(46)} ${cand.backend.padEnd(16)} ${v}`);
      }
    }
  }

  // the goals of issue 2, from the rows of this run
  const goals = rows.filter((r) => r.backend.startsWith('native') && !r.backend.includes('async') && !r.error && r.n === 32 && (r.kernel === 'gradcamTail' || r.kernel === 'resizeGuided'));
  if (goals.length) say('\ngoals (N = 32): native >= 10x ts, >= 10x tfjs; resize+guided >= 50% of copy bandwidth');
  for (const r of goals) {
    const same = (b: string): Row | undefined =>
      rows.find((q) => q.backend === b && q.kernel === r.kernel && q.n === r.n && q.k === r.k && q.h === r.h && q.w === r.w && !q.error);
    // rows writing into reused `out` arrays compare with the TypeScript twin doing the same
    const ts = same(r.backend.endsWith('-out') ? 'ts-out' : 'ts');
    const tf = tfjs ? same(tfjs.backend) : undefined;
    const copy = [same('copy-set'), same('copy-buffer')].filter((q): q is Row => !!q).sort((p, q) => q.gbPerSec - p.gbPerSec)[0];
    const allocCopy = same('copy-alloc');
    const goal = {
      type: 'goal',
      kernel: r.kernel,
      backend: r.backend,
      layout: r.layout,
      n: r.n,
      k: r.k,
      c: r.c,
      h: r.h,
      w: r.w,
      H: r.H,
      W: r.W,
      opsPerSec: r.opsPerSec,
      gbPerSec: r.gbPerSec,
      vsTs: ts ? r.opsPerSec / ts.opsPerSec : null,
      vsTfjs: tf ? r.opsPerSec / tf.opsPerSec : null,
      tfjsBackend: tfjs?.backend ?? null,
      ofCopyBandwidth: copy ? r.gbPerSec / copy.gbPerSec : null,
      copyGbPerSec: copy?.gbPerSec ?? null,
      // against a copy into a fresh array, which a kernel returning a new output must also make
      ofAllocCopyBandwidth: allocCopy ? r.gbPerSec / allocCopy.gbPerSec : null,
      allocCopyGbPerSec: allocCopy?.gbPerSec ?? null,
      // the same ratios from each row's fastest sample
      bestVsTs: ts ? r.bestOpsPerSec / ts.bestOpsPerSec : null,
      bestVsTfjs: tf ? r.bestOpsPerSec / tf.bestOpsPerSec : null,
      bestOfCopyBandwidth: copy ? r.bestOpsPerSec / copy.bestOpsPerSec : null,
    };
    if (o.json) emit(goal);
    else {
      const f = (v: number | null, unit: string): string => (v === null ? 'n/a' : `${v.toFixed(2)}${unit}`);
      say(
        `${describeCase({ ...r, kernel: r.kernel as KernelName }).padEnd(46)} ${r.backend.padEnd(16)} vs ts ${f(goal.vsTs, 'x')}, vs ${goal.tfjsBackend ?? 'tfjs'} ${f(goal.vsTfjs, 'x')}, ${f(goal.ofCopyBandwidth === null ? null : goal.ofCopyBandwidth * 100, '%')} of copy bandwidth (${f(goal.copyGbPerSec, ' GB/s')}), ${f(goal.ofAllocCopyBandwidth === null ? null : goal.ofAllocCopyBandwidth * 100, '%')} of a copy into a new array` +
          `  | best samples: ${f(goal.bestVsTs, 'x')}, ${f(goal.bestVsTfjs, 'x')}, ${f(goal.bestOfCopyBandwidth === null ? null : goal.bestOfCopyBandwidth * 100, '%')}`,
      );
    }
  }
  // camTail over 3 rounds against three gradcamTail calls, per backend and case
  const top3 = rows.filter((r) => r.kernel === 'camTail-top3' && !r.error);
  if (top3.length) say('\ncamTail (R = 3 rounds, A passed once) vs 3 x gradcamTail: ops/s ratio (> 1: camTail faster)');
  for (const r of top3) {
    const three = rows.find((q) => q.kernel === 'gradcamTail-x3' && q.backend === r.backend && q.n === r.n && q.k === r.k && q.h === r.h && q.w === r.w && !q.error);
    if (!three) continue;
    const ratio = { type: 'camTailTop3', backend: r.backend, layout: r.layout, n: r.n, k: r.k, h: r.h, w: r.w, H: r.H, W: r.W,
      ratio: r.opsPerSec / three.opsPerSec, bestRatio: r.bestOpsPerSec / three.bestOpsPerSec, camTailMs: r.msPerOp, threeCallsMs: three.msPerOp };
    if (o.json) emit(ratio);
    else say(`n=${r.n} k=${r.k} ${r.h}x${r.w}->${r.H}x${r.W} ${r.backend.padEnd(12)} ${ratio.camTailMs.toPrecision(4)} ms vs ${ratio.threeCallsMs.toPrecision(4)} ms: ${ratio.ratio.toFixed(2)}x (best samples ${ratio.bestRatio.toFixed(2)}x)`);
  }
  if (!impls.some((i) => i.backend.startsWith('native'))) say('\n(native addon not built: no native rows; run `npm run build:native`)');
  console.log = log;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
