/**
 * `npm run reliability`: the reliability battery, as figures. Each part runs in a child process of
 * its own (a native crash is then a figure, not the end of the run):
 *  - api: bad arguments to the public API (kernels on every device, sync and async; explain() on a
 *    tfjs and an ONNX model; createExplainer; the picture helpers). Each must throw or reject with an
 *    error that has a `code` and a message naming the argument: a crash, a result, or an error
 *    without code or name counts as a failure.
 *  - crashes: children that died by a signal or without a result (native kernel calls with buffers
 *    transferred mid-call need test/kernels.safety.test.ts, which is not in this branch: not run).
 *  - leaks: tensors and RSS before and after N createExplainer / explain / dispose cycles, tfjs
 *    (test/helpers/leak-cycles) and ONNX.
 *  - event loop: p99 and max delay (perf_hooks.monitorEventLoopDelay) while MobileNetV2 batches are
 *    explained, ONNX (../shared/reference/models/mobilenet_v2.onnx) and tfjs (nsfwjs MobileNetV2).
 *  - concurrent = sequential: 64 explain() calls at once give bit for bit what 64 in a row give.
 *  - sanitizer: scripts/fuzz-native.js where it exists (its --quick with ours), else not run.
 *
 * Usage: node dist/bench/reliability.js [--quick] [--json]   (the JSON line is printed either way;
 * --json prints only it). A part that fails its own check makes the exit code 1.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay, performance } from 'perf_hooks';
import { lcg, saveTinyTfjsModel } from '../test/helpers/tiny-tfjs';

const ROOT = path.resolve(__dirname, '..', '..');
const SELF = __filename;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runNode(args: string[], env: Record<string, string> = {}, timeoutMs = 240000): Promise<ChildRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** The last line of a child's stdout that parses as JSON, or undefined. */
function lastJson<T>(out: string): T | undefined {
  const lines = out.trim().split('\n').reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l) as T;
    } catch {
      /* not this one */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// tiny models

/** The reliability tests' tiny model, without their conv2 bias and sidecar. */
function saveTfjsModel(dir: string, size: number, hidden = 0): Promise<string> {
  return saveTinyTfjsModel(dir, size, { hidden });
}

const SMALL_ONNX = path.join(ROOT, 'test', 'fixtures', 'onnx', 'misc_o11', 'model.onnx');

function mobilenetOnnx(): string | undefined {
  const candidates = [path.join(ROOT, '..', 'shared', 'reference', 'models', 'mobilenet_v2.onnx'), '/work/shared/reference/models/mobilenet_v2.onnx'];
  return candidates.find((f) => fs.existsSync(f));
}

const NSFWJS = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2', 'model.min.js');

// ---------------------------------------------------------------------------------------------
// part: api (child)

interface Case {
  name: string;
  /** the argument the message must name (`for <arg>` or the option's name) */
  arg: string;
  call: () => unknown;
}

interface ApiOutcome {
  tried: number;
  passed: number;
  failures: Array<{ name: string; got: string }>;
}

async function checkCase(c: Case): Promise<string | undefined> {
  let value: unknown;
  try {
    value = await c.call();
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    if (!(e instanceof Error)) return `threw a non-Error ${String(e)}`;
    if (typeof err.code !== 'string' || err.code.length === 0) return `no code: ${e.message}`;
    if (!String(e.message).includes(c.arg)) return `message does not name '${c.arg}': ${e.message}`;
    return undefined;
  }
  const shown = value instanceof Float32Array || value instanceof Uint8Array ? `${value.constructor.name}(${value.length})` : typeof value;
  return `no error: returned ${shown}`;
}

/** The kernel calls with valid arguments; every case below breaks one of them. */
function kernelCases(): Array<{ kernel: string; args: unknown[]; params: Array<{ name: string; kind: 'f32' | 'int' | 'bool' | 'layout' | 'shape' | 'u8' | 'object' | 'op' | 'colormap' }> }> {
  const shape = { n: 1, k: 2, h: 3, w: 4, layout: 'nchw' };
  const f = (n: number) => new Float32Array(n).fill(0.25);
  return [
    { kernel: 'channelMean', args: [f(24), shape], params: [{ name: 'x', kind: 'f32' }, { name: 'shape', kind: 'shape' }] },
    { kernel: 'channelSums', args: [f(24), f(24), shape], params: [{ name: 'g', kind: 'f32' }, { name: 'a', kind: 'f32' }, { name: 'shape', kind: 'shape' }] },
    { kernel: 'weightedChannelSum', args: [f(2), f(24), shape, true], params: [{ name: 'weights', kind: 'f32' }, { name: 'a', kind: 'f32' }, { name: 'shape', kind: 'shape' }, { name: 'relu', kind: 'bool' }] },
    { kernel: 'elementwiseChannelSum', args: [f(24), f(24), shape, 'grad-times-act', true], params: [{ name: 'g', kind: 'f32' }, { name: 'a', kind: 'f32' }, { name: 'shape', kind: 'shape' }, { name: 'op', kind: 'op' }, { name: 'relu', kind: 'bool' }] },
    { kernel: 'resizeBilinear', args: [f(12), 1, 3, 4, 6, 8], params: [{ name: 'x', kind: 'f32' }, { name: 'n', kind: 'int' }, { name: 'h', kind: 'int' }, { name: 'w', kind: 'int' }, { name: 'outH', kind: 'int' }, { name: 'outW', kind: 'int' }] },
    { kernel: 'minMaxNormalize', args: [f(24), 2, 12], params: [{ name: 'x', kind: 'f32' }, { name: 'n', kind: 'int' }, { name: 'size', kind: 'int' }] },
    { kernel: 'guidedProduct', args: [f(24), f(12), 1, 2, 3, 4, 'nchw'], params: [{ name: 'guided', kind: 'f32' }, { name: 'cam', kind: 'f32' }, { name: 'n', kind: 'int' }, { name: 'c', kind: 'int' }, { name: 'H', kind: 'int' }, { name: 'W', kind: 'int' }, { name: 'layout', kind: 'layout' }] },
    { kernel: 'gradcamTail', args: [f(24), f(24), shape, { outH: 6, outW: 8 }], params: [{ name: 'a', kind: 'f32' }, { name: 'g', kind: 'f32' }, { name: 'shape', kind: 'shape' }, { name: 'options', kind: 'object' }] },
    { kernel: 'applyColormap', args: [f(12), 1, 3, 4, 'jet'], params: [{ name: 'maps', kind: 'f32' }, { name: 'n', kind: 'int' }, { name: 'H', kind: 'int' }, { name: 'W', kind: 'int' }, { name: 'colormap', kind: 'colormap' }] },
    { kernel: 'deprocessImage', args: [f(24), 1, 2, 3, 4, 'nchw'], params: [{ name: 'data', kind: 'f32' }, { name: 'n', kind: 'int' }, { name: 'c', kind: 'int' }, { name: 'H', kind: 'int' }, { name: 'W', kind: 'int' }, { name: 'layout', kind: 'layout' }] },
    { kernel: 'greyToRgb', args: [new Uint8Array(12), 1, 3, 4], params: [{ name: 'grey', kind: 'u8' }, { name: 'n', kind: 'int' }, { name: 'H', kind: 'int' }, { name: 'W', kind: 'int' }] },
  ];
}

/** Bad values for one parameter kind, each with the argument name its message must hold. */
function badValues(name: string, kind: string, good: unknown): Array<{ label: string; value: unknown; arg: string }> {
  switch (kind) {
    case 'f32': {
      const g = good as Float32Array;
      return [
        { label: 'Float64Array', value: new Float64Array(g.length), arg: name },
        { label: 'one short', value: new Float32Array(g.length - 1), arg: name },
        { label: 'plain array', value: Array.from(g), arg: name },
        { label: 'null', value: null, arg: name },
      ];
    }
    case 'u8':
      return [{ label: 'Float32Array', value: new Float32Array(12), arg: name }, { label: 'one short', value: new Uint8Array(11), arg: name }];
    case 'int':
      return [
        { label: '0', value: 0, arg: name },
        { label: '-1', value: -1, arg: name },
        { label: '1.5', value: 1.5, arg: name },
        { label: 'NaN', value: NaN, arg: name },
        { label: 'Infinity', value: Infinity, arg: name },
        { label: "'4'", value: '4', arg: name },
        { label: 'undefined', value: undefined, arg: name },
      ];
    case 'bool':
      return [{ label: '1', value: 1, arg: name }, { label: "'yes'", value: 'yes', arg: name }];
    case 'layout':
      return [{ label: "'NCHW'", value: 'NCHW', arg: name }, { label: '0', value: 0, arg: name }];
    case 'op':
      return [{ label: "'times'", value: 'times', arg: name }];
    case 'colormap':
      return [{ label: "'rainbow'", value: 'rainbow', arg: name }, { label: 'null', value: null, arg: name }];
    case 'object':
      return [
        { label: 'undefined', value: undefined, arg: name },
        { label: 'outH 0', value: { ...(good as object), outH: 0 }, arg: `${name}.outH` },
        { label: 'outW missing', value: { outH: 6 }, arg: `${name}.outW` },
        { label: "relu 'no'", value: { ...(good as object), relu: 'no' }, arg: `${name}.relu` },
      ];
    case 'shape': {
      const s = good as Record<string, unknown>;
      return [
        { label: 'undefined', value: undefined, arg: name },
        { label: 'n 0', value: { ...s, n: 0 }, arg: `${name}.n` },
        { label: 'k 1.5', value: { ...s, k: 1.5 }, arg: `${name}.k` },
        { label: 'h NaN', value: { ...s, h: NaN }, arg: `${name}.h` },
        { label: "w '4'", value: { ...s, w: '4' }, arg: `${name}.w` },
        { label: "layout 'NCHW'", value: { ...s, layout: 'NCHW' }, arg: `${name}.layout` },
      ];
    }
    default:
      return [];
  }
}

async function apiPart(quick: boolean): Promise<ApiOutcome> {
  const { getKernels } = await import('../lib/kernels');
  const cases: Case[] = [];
  const devices: Array<'cpu' | 'js'> = ['cpu', 'js'];
  for (const device of devices) {
    let K: ReturnType<typeof getKernels> | undefined;
    try {
      K = getKernels(device);
    } catch {
      continue; // the native addon absent: its cases are not tried
    }
    for (const mode of quick ? (['sync'] as const) : (['sync', 'async'] as const)) {
      const set = (mode === 'sync' ? K.sync : K.async) as unknown as Record<string, (...a: unknown[]) => unknown>;
      for (const { kernel, args, params } of kernelCases()) {
        params.forEach((p, i) => {
          for (const bad of badValues(p.name, p.kind, args[i])) {
            const a = args.slice();
            a[i] = bad.value;
            cases.push({ name: `${device} ${mode} ${kernel}(${p.name} = ${bad.label})`, arg: bad.arg, call: () => set[kernel](...a) });
          }
        });
      }
    }
  }

  // explain() on a tfjs and an ONNX model
  const { createExplainer } = await import('../lib/index');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-reliability-api-'));
  const batchOf = (shape: [number, number, number, number], layout: 'nchw' | 'nhwc') => ({ data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i)), shape, layout });
  const explainers = [
    { name: 'tfjs', ex: await createExplainer(await saveTfjsModel(path.join(tmp, 'tiny'), 8), { engine: 'cpu' }), shape: [1, 8, 8, 3] as [number, number, number, number], ok: batchOf([1, 8, 8, 3], 'nhwc') },
    { name: 'onnx', ex: await createExplainer(SMALL_ONNX, { cache: false }), shape: [1, 3, 32, 32] as [number, number, number, number], ok: batchOf([1, 3, 32, 32], 'nchw') },
  ];
  for (const { name, ex, shape, ok } of explainers) {
    const size = shape.reduce((x, y) => x * y, 1);
    const { data } = ok;
    const withNaN = data.slice();
    withNaN[3] = NaN;
    const inputs: Array<[string, unknown, string]> = [
      ['input null', null, 'input'],
      ['input a Float32Array', data, 'input'],
      ['data Float64Array', { ...ok, data: new Float64Array(size) }, 'input.data'],
      ['data one short', { ...ok, data: data.subarray(1) }, 'input.data'],
      ['data with NaN', { ...ok, data: withNaN }, 'input.data'],
      ['data with Infinity', { ...ok, data: data.map((v, i) => (i === 5 ? Infinity : v)) }, 'input.data'],
      ['shape of 3', { ...ok, shape: shape.slice(1) }, 'input.shape'],
      ['shape n 0', { ...ok, shape: [0, ...shape.slice(1)] }, 'input.shape'],
      ['shape n 1.5', { ...ok, shape: [1.5, ...shape.slice(1)] }, 'input.shape'],
      ['shape not an array', { ...ok, shape: 'x' }, 'input.shape'],
      ['layout bad', { ...ok, layout: 'chw' }, 'input.layout'],
    ];
    for (const [label, input, arg] of inputs) cases.push({ name: `${name} explain(${label})`, arg, call: () => ex.explain(input as never) });
    const options: Array<[string, unknown, string]> = [
      ['options a string', 'gradcam', 'options'],
      ['method unknown', { method: 'gradcam+' }, 'method'],
      ['method a number', { method: 1 }, 'method'],
      ['layer missing', { layer: 'no-such-layer' }, 'no-such-layer'],
      ['layer a number', { layer: 3 }, 'layer'],
      ['layer twice', { layer: ['a', 'a'] }, 'layer'],
      ['targets class 99', { targets: 99 }, 'targets'],
      ['targets -1', { targets: -1 }, 'targets'],
      ['targets topK 0', { targets: { topK: 0 } }, 'targets'],
      ['targets array too short', { targets: [] }, 'targets'],
      ['targets a string', { targets: 'best' }, 'targets'],
      ['counterfactual a string', { counterfactual: 'yes' }, 'counterfactual'],
      ['device unknown', { device: 'gpu' }, 'device'],
      ['guided a string', { guided: 'yes' }, 'guided'],
      ['guided on saliency', { method: 'saliency', guided: true }, 'guided'],
      ['augSmooth a number', { augSmooth: 1 }, 'augSmooth'],
      ['eigenSmooth a string', { eigenSmooth: 'no' }, 'eigenSmooth'],
      ['guidedRelu6 a number', { guidedRelu6: 0 }, 'guidedRelu6'],
      ['gradcamPlusPlus unknown', { gradcamPlusPlus: 'authors' }, 'gradcamPlusPlus'],
      ['unknown option methd', { methd: 'gradcam' }, 'methd'],
    ];
    for (const [label, opts, arg] of options) cases.push({ name: `${name} explain(ok, ${label})`, arg, call: () => ex.explain(ok, opts as never) });
  }
  // tfjs-only inputs: tensors, a score function, GraphModel options
  const tf = await import('@tensorflow/tfjs');
  const { loadTfjsModel, createTfjsExplainer } = await import('../lib/tfjs');
  const tfjsEx = explainers[0].ex;
  const disposed = tf.zeros([1, 8, 8, 3]);
  disposed.dispose();
  const threeD = tf.zeros([8, 8, 3]);
  const tfjsCases: Array<[string, () => unknown, string]> = [
    ['tfjs explain(disposed tensor)', () => tfjsEx.explain(disposed as never), 'input'],
    ['tfjs explain(3-D tensor)', () => tfjsEx.explain(threeD as never), 'input'],
    ['tfjs explain(score of the wrong shape)', () => tfjsEx.explain(explainers[0].ok, { targets: { score: (l: { sum: () => unknown }) => l.sum() } }), 'targets.score'],
    ['tfjs explain(score not a function)', () => tfjsEx.explain(explainers[0].ok, { targets: { score: 3 } } as never), 'targets'],
    ['loadTfjsModel(missing path)', () => loadTfjsModel(path.join(tmp, 'none', 'model.json')), 'pathOrUrl'],
    ['createTfjsExplainer(LayersModel, logitsNode)', async () => createTfjsExplainer(await loadTfjsModel(path.join(tmp, 'tiny', 'model.json')), { logitsNode: 'x' } as never), 'logitsNode'],
    ['createTfjsExplainer(tfjs engine unknown)', async () => createTfjsExplainer(await loadTfjsModel(path.join(tmp, 'tiny', 'model.json')), { engine: 'gpu' } as never), 'engine'],
  ];
  for (const [label, call, arg] of tfjsCases) cases.push({ name: label, arg, call });

  const missing = path.join(tmp, 'missing.onnx');
  const txt = path.join(tmp, 'model.txt');
  fs.writeFileSync(txt, 'x');
  const created: Array<[string, () => unknown, string]> = [
    ['missing file', () => createExplainer(missing), missing],
    ['not a model format', () => createExplainer(txt), txt],
    ['a number', () => createExplainer(42 as never), 'model'],
    ['null', () => createExplainer(null as never), 'model'],
    ['onnx option misspelt', () => createExplainer(SMALL_ONNX, { workrs: 1 } as never), 'workrs'],
    ['onnx executionProvider unknown', () => createExplainer(SMALL_ONNX, { executionProvider: 'tpu' } as never), 'executionProvider'],
    ['onnx workers -1', () => createExplainer(SMALL_ONNX, { workers: -1 }), 'workers'],
  ];
  for (const [label, call, arg] of created) cases.push({ name: `createExplainer(${label})`, arg, call });

  // the picture helpers
  const img = await import('../lib/image');
  const map = new Float32Array(12).fill(0.5);
  const rgb = new Float32Array(36).fill(0.5);
  const pics: Array<[string, () => unknown, string]> = [
    ['renderHeatmap width 0', () => img.renderHeatmap(map, 0, 3), 'width'],
    ['renderHeatmap map short', () => img.renderHeatmap(map.subarray(1), 4, 3), 'map'],
    ['renderHeatmap colormap unknown', () => img.renderHeatmap(map, 4, 3, { colormap: 'rainbow' as never }), 'colormap'],
    ['renderOverlay image short', () => img.renderOverlay(rgb.subarray(3), map, 4, 3), 'image'],
    ['renderOverlay alpha 2', () => img.renderOverlay(rgb, map, 4, 3, { alpha: 2 } as never), 'alpha'],
    ['showCamOnImage imageWeight -1', () => img.showCamOnImage(rgb, map, 4, 3, { imageWeight: -1 } as never), 'imageWeight'],
    ['decodeImage width 0', () => img.decodeImage(Buffer.from('x'), 0, 3), 'width'],
    ['decodeImage height 1e9', () => img.decodeImage(Buffer.from('x'), 4, 1e9), 'height'],
    ['preprocessImages mean of 2', () => img.preprocessImages([], { width: 4, height: 4, mean: [0, 0] } as never), 'mean'],
    ['preprocessImages layout bad', () => img.preprocessImages([], { width: 4, height: 4, layout: 'hwc' } as never), 'layout'],
    ['parseNpy garbage', () => img.parseNpy(Buffer.from('not an npy file'), 'x.npy'), 'x.npy'],
    ['encodePng size mismatch', () => img.encodePng(new Uint8Array(10), 4, 3, 3), 'pixels'],
  ];
  for (const [label, call, arg] of pics) cases.push({ name: label, arg, call });

  const failures: ApiOutcome['failures'] = [];
  for (const c of cases) {
    const got = await checkCase(c);
    if (got !== undefined) failures.push({ name: c.name, got });
  }
  for (const { ex } of explainers) ex.dispose();
  threeD.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  return { tried: cases.length, passed: cases.length - failures.length, failures };
}

// ---------------------------------------------------------------------------------------------
// part: leaks (children)

interface LeakOutcome {
  engine: string;
  cycles: number;
  tensorsBefore?: number;
  tensorsAfter?: number;
  rssWarmMB: number;
  rssAfterMB: number;
  rssMaxMB: number;
  growthPct: number;
}

async function onnxLeakCycles(cycles: number): Promise<{ rss: number[] }> {
  const { createExplainer } = await import('../lib/index');
  const gc = (globalThis as { gc?: () => void }).gc as () => void;
  const bytes = fs.readFileSync(SMALL_ONNX);
  const x = { data: Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), shape: [2, 3, 32, 32] as [number, number, number, number], layout: 'nchw' as const };
  const rss: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const ex = await createExplainer(bytes, { cache: false });
    const r = await ex.explain(x, { method: 'gradcam' });
    if (r.explanations.length !== 2) throw new Error('expected 2 explanations');
    ex.dispose();
    await new Promise((res) => setTimeout(res, 20)); // the worker thread ends
    gc();
    gc();
    rss.push(process.memoryUsage().rss);
  }
  return { rss };
}

/**
 * RSS after warm-up (the median of the 10 cycles after it) against the end (the median of the last
 * 10): a leak grows both the end and every cycle's figure, while a worker thread still exiting when
 * RSS is read shows as a lone spike (reported as the maximum, not counted as growth).
 */
function leakFigures(engine: string, rss: number[], tensors?: number[]): LeakOutcome {
  const warm = Math.min(Math.floor(rss.length * 0.3), 14);
  const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const before = median(rss.slice(warm, warm + 10));
  const after = median(rss.slice(-10));
  return {
    engine,
    cycles: rss.length,
    tensorsBefore: tensors?.[warm],
    tensorsAfter: tensors?.[tensors.length - 1],
    rssWarmMB: Math.round(before / 2 ** 20),
    rssAfterMB: Math.round(after / 2 ** 20),
    rssMaxMB: Math.round(Math.max(...rss.slice(warm)) / 2 ** 20),
    growthPct: Math.round((after / before - 1) * 1000) / 10,
  };
}

// ---------------------------------------------------------------------------------------------
// part: event loop (child)

interface LoopOutcome {
  engine: string;
  model: string;
  batches: number;
  batchSize: number;
  msPerBatch: number;
  p99Ms: number;
  maxMs: number;
  skipped?: string;
}

async function eventLoopPart(engine: 'onnx' | 'tfjs', quick: boolean): Promise<LoopOutcome> {
  const { createExplainer } = await import('../lib/index');
  const batches = quick ? 2 : 4;
  let ex;
  let model: string;
  if (engine === 'onnx') {
    const file = mobilenetOnnx();
    if (!file) return { engine, model: 'mobilenet_v2.onnx', batches: 0, batchSize: 0, msPerBatch: 0, p99Ms: 0, maxMs: 0, skipped: 'mobilenet_v2.onnx not found' };
    model = 'mobilenet_v2.onnx';
    ex = await createExplainer(file, { cache: false });
  } else {
    if (!fs.existsSync(NSFWJS)) return { engine, model: 'nsfwjs MobileNetV2', batches: 0, batchSize: 0, msPerBatch: 0, p99Ms: 0, maxMs: 0, skipped: 'nsfwjs not installed' };
    const { loadTfjsModel } = await import('../lib/tfjs');
    model = 'nsfwjs MobileNetV2';
    ex = await createExplainer(await loadTfjsModel(NSFWJS));
  }
  try {
    const dims = ex.inputShape.map((d) => (typeof d === 'number' && d > 0 ? d : null));
    const batchSize = dims[0] ?? 2;
    const rest = ex.layout === 'nchw' ? [dims[1] ?? 3, dims[2] ?? 224, dims[3] ?? 224] : [dims[1] ?? 224, dims[2] ?? 224, dims[3] ?? 3];
    const shape = [batchSize, ...rest] as [number, number, number, number];
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.01));
    const input = { data, shape, layout: ex.layout };
    await ex.explain(input); // warm-up: sessions, kernels, first compilation
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) await ex.explain(input);
    const ms = performance.now() - t0;
    h.disable();
    return { engine: engine === 'tfjs' ? `tfjs (${ex.engine})` : `onnx (${ex.engine})`, model, batches, batchSize, msPerBatch: Math.round(ms / batches), p99Ms: Math.round(h.percentile(99) / 1e5) / 10, maxMs: Math.round(h.max / 1e5) / 10 };
  } finally {
    ex.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// part: concurrent = sequential (child)

interface ConcurrentOutcome {
  engine: string;
  calls: number;
  equal: number;
  firstDifference?: string;
}

async function concurrentPart(engine: 'onnx' | 'tfjs', calls: number): Promise<ConcurrentOutcome> {
  const { createExplainer } = await import('../lib/index');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-reliability-conc-'));
  const ex = engine === 'onnx'
    ? await createExplainer(SMALL_ONNX, { cache: false })
    : await createExplainer(await saveTfjsModel(path.join(tmp, 'tiny'), 16), { engine: 'cpu' });
  try {
    const shape = (engine === 'onnx' ? [2, 3, 32, 32] : [2, 16, 16, 3]) as [number, number, number, number];
    const size = shape.reduce((a, b) => a * b, 1);
    const methods = ['gradcam', 'guided-gradcam', 'gradcam++', 'layercam'] as const;
    const job = (i: number) => {
      const r = lcg(1000 + i);
      return {
        input: { data: Float32Array.from({ length: size }, () => r() * 2 - 1), shape, layout: ex.layout },
        options: { method: methods[i % methods.length], targets: { topK: 2 } },
      };
    };
    const jobs = Array.from({ length: calls }, (_, i) => job(i));
    const seq = [];
    for (const j of jobs) seq.push(await ex.explain(j.input, j.options as never));
    const conc = await Promise.all(jobs.map((j) => ex.explain(j.input, j.options as never)));
    let equal = 0;
    let firstDifference: string | undefined;
    const same = (a?: Float32Array, b?: Float32Array) => (a === undefined && b === undefined) || (a !== undefined && b !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
    seq.forEach((s, i) => {
      const c = conc[i];
      const ok = same(s.logits, c.logits) && s.explanations.length === c.explanations.length
        && s.explanations.every((e, k) => e.classIndex === c.explanations[k].classIndex && same(e.map, c.explanations[k].map) && same(e.guidedMap, c.explanations[k].guidedMap) && same(e.inputGradient, c.explanations[k].inputGradient));
      if (ok) equal++;
      else firstDifference ??= `call ${i} (${jobs[i].options.method})`;
    });
    return { engine: `${engine} (${ex.engine})`, calls, equal, firstDifference };
  } finally {
    ex.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// the parent: runs each part in a child, prints the table and the JSON line

async function child(part: string, quick: boolean): Promise<void> {
  let out: unknown;
  if (part === 'api') out = await apiPart(quick);
  else if (part === 'leak-onnx') out = await onnxLeakCycles(Number(process.argv[4]));
  else if (part === 'loop-onnx') out = await eventLoopPart('onnx', quick);
  else if (part === 'loop-tfjs') out = await eventLoopPart('tfjs', quick);
  else if (part === 'conc-onnx') out = await concurrentPart('onnx', quick ? 16 : 64);
  else if (part === 'conc-tfjs') out = await concurrentPart('tfjs', quick ? 16 : 64);
  else throw new Error(`unknown part ${part}`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

interface Summary {
  quick: boolean;
  api: ApiOutcome | { error: string };
  crashes: { children: number; crashed: number; details: string[]; nativeTransfers: string };
  leaks: Array<LeakOutcome | { engine: string; error: string }>;
  eventLoop: Array<LoopOutcome | { engine: string; error: string }>;
  concurrent: Array<ConcurrentOutcome | { engine: string; error: string }>;
  sanitizer: string;
  seconds: number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1], argv.includes('--quick'));
    return;
  }
  const unknown = argv.filter((a) => a !== '--quick' && a !== '--json');
  if (unknown.length) throw new Error(`unknown option ${unknown[0]} (usage: node dist/bench/reliability.js [--quick] [--json])`);
  const quick = argv.includes('--quick');
  const jsonOnly = argv.includes('--json');
  const say = (line: string) => {
    if (!jsonOnly) process.stderr.write(line + '\n');
  };
  const t0 = performance.now();
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-reliability-cache-'));
  const env = { GRADCAM_CACHE_DIR: cacheDir };
  const crashes: Summary['crashes'] = {
    children: 0,
    crashed: 0,
    details: [],
    nativeTransfers: fs.existsSync(path.join(ROOT, 'test', 'kernels.safety.test.ts'))
      ? 'not run: test/kernels.safety.test.ts exists but this script does not drive it yet'
      : 'not run: test/kernels.safety.test.ts (native calls with buffers transferred mid-call) is not in this branch',
  };
  /** runs a part in a child; a signal or a missing result is a crash */
  const part = async <T>(name: string, args: string[], nodeFlags: string[] = [], extraEnv: Record<string, string> = {}): Promise<T | { error: string }> => {
    say(`reliability: ${name} ...`);
    const r = await runNode([...nodeFlags, ...args], { ...env, ...extraEnv });
    crashes.children++;
    const value = lastJson<T>(r.stdout);
    if (r.signal || r.code !== 0 || value === undefined) {
      const why = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
      const tail = r.stderr.trim().split('\n').slice(-2).join(' | ');
      if (r.signal || value === undefined) {
        crashes.crashed++;
        crashes.details.push(`${name}: ${why}: ${tail}`);
      }
      return { error: `${why}: ${tail}` };
    }
    return value;
  };
  const q = quick ? ['--quick'] : [];

  const api = await part<ApiOutcome>('api (bad arguments)', [SELF, '--child', 'api', ...q]);

  const cycles = quick ? 20 : 50;
  const leaks: Summary['leaks'] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-reliability-'));
  try {
    const modelJson = await saveTfjsModel(path.join(tmp, 'leak'), 16, 640);
    const flags = ['--expose-gc', '--max-semi-space-size=1'];
    const mallocEnv = { MALLOC_MMAP_THRESHOLD_: '65536' };
    const tfjsLeak = await part<{ tensors: number[]; rss: number[] }>(`leaks: tfjs, ${cycles} cycles`, [path.join(ROOT, 'dist', 'test', 'helpers', 'leak-cycles.js'), modelJson, String(cycles)], flags, mallocEnv);
    leaks.push('error' in tfjsLeak ? { engine: 'tfjs (cpu)', error: tfjsLeak.error } : leakFigures('tfjs (cpu)', tfjsLeak.rss, tfjsLeak.tensors));
    const onnxLeak = await part<{ rss: number[] }>(`leaks: onnx, ${cycles} cycles`, [SELF, '--child', 'leak-onnx', String(cycles)], flags, mallocEnv);
    leaks.push('error' in onnxLeak ? { engine: 'onnx', error: onnxLeak.error } : leakFigures('onnx', onnxLeak.rss));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const eventLoop: Summary['eventLoop'] = [];
  for (const e of ['onnx', 'tfjs'] as const) {
    const r = await part<LoopOutcome>(`event loop: ${e} MobileNetV2`, [SELF, '--child', `loop-${e}`, ...q]);
    eventLoop.push('error' in r ? { engine: e, error: r.error } : r);
  }
  const concurrent: Summary['concurrent'] = [];
  for (const e of ['onnx', 'tfjs'] as const) {
    const r = await part<ConcurrentOutcome>(`concurrent = sequential: ${e}`, [SELF, '--child', `conc-${e}`, ...q]);
    concurrent.push('error' in r ? { engine: e, error: r.error } : r);
  }

  let sanitizer = 'not run: scripts/fuzz-native.js is not in this branch (where it is: npm run fuzz:native)';
  const fuzz = path.join(ROOT, 'scripts', 'fuzz-native.js');
  if (fs.existsSync(fuzz)) {
    const q2 = quick ? ['--quick'] : [];
    const r = await part<{ calls: number; crashes: number; findings: number; wrong: number; unexpected: number }>(`sanitizer (fuzz-native${quick ? ' --quick' : ''})`, [fuzz, ...q2]);
    sanitizer = 'error' in r ? `fuzz-native failed: ${r.error}`
      : `${r.findings} finding(s), ${r.crashes} crash(es), ${r.wrong} wrong and ${r.unexpected} unexpected result(s) in ${r.calls} calls (ASan+UBSan)`;
    if (!('error' in r) && r.crashes > 0) {
      crashes.crashed += r.crashes;
      crashes.details.push(`sanitizer: ${r.crashes} crashed fuzz child process(es)`);
    }
  }
  fs.rmSync(cacheDir, { recursive: true, force: true });

  const summary: Summary = { quick, api, crashes, leaks, eventLoop, concurrent, sanitizer, seconds: Math.round((performance.now() - t0) / 100) / 10 };
  const ok = !('error' in api) && api.passed === api.tried && crashes.crashed === 0
    && leaks.every((l) => !('error' in l) && l.growthPct < 5 && (l.tensorsAfter === undefined || l.tensorsAfter === 0))
    && concurrent.every((c) => !('error' in c) && c.equal === c.calls);
  if (!jsonOnly) process.stdout.write(table(summary) + '\n');
  process.stdout.write(JSON.stringify({ type: 'reliability', ok, ...summary }) + '\n');
  if (!ok) process.exitCode = 1;
}

function table(s: Summary): string {
  const rows: Array<[string, string]> = [];
  if ('error' in s.api) rows.push(['bad API arguments', `error: ${s.api.error}`]);
  else {
    rows.push(['bad API arguments', `${s.api.passed} of ${s.api.tried} passed (an error with a code naming the argument)`]);
    for (const f of s.api.failures.slice(0, 10)) rows.push(['  failed', `${f.name}: ${f.got}`]);
    if (s.api.failures.length > 10) rows.push(['  failed', `... ${s.api.failures.length - 10} more`]);
  }
  rows.push(['crashes', `${s.crashes.crashed} of ${s.crashes.children} child processes`]);
  for (const d of s.crashes.details) rows.push(['  crash', d]);
  rows.push(['  native transfers', s.crashes.nativeTransfers]);
  for (const l of s.leaks) {
    if ('error' in l) rows.push([`leaks ${l.engine}`, `error: ${l.error}`]);
    else rows.push([`leaks ${l.engine}`, `${l.cycles} cycles: ${l.tensorsBefore !== undefined ? `live tensors ${l.tensorsBefore} after warm-up -> ${l.tensorsAfter} at the end, ` : ''}RSS ${l.rssWarmMB} MB after warm-up -> ${l.rssAfterMB} MB at the end (${l.growthPct >= 0 ? '+' : ''}${l.growthPct}%; medians of 10 cycles; max ${l.rssMaxMB} MB)`]);
  }
  for (const e of s.eventLoop) {
    if ('error' in e) rows.push([`event loop ${e.engine}`, `error: ${e.error}`]);
    else if (e.skipped) rows.push([`event loop ${e.engine}`, `not run: ${e.skipped}`]);
    else rows.push([`event loop ${e.engine}`, `${e.model}, ${e.batches} batches of ${e.batchSize} (${e.msPerBatch} ms each): p99 ${e.p99Ms} ms, max ${e.maxMs} ms`]);
  }
  for (const c of s.concurrent) {
    if ('error' in c) rows.push([`concurrent ${c.engine}`, `error: ${c.error}`]);
    else rows.push([`concurrent ${c.engine}`, `${c.equal} of ${c.calls} concurrent calls bit for bit equal to sequential${c.firstDifference ? ` (first difference: ${c.firstDifference})` : ''}`]);
  }
  rows.push(['sanitizer', s.sanitizer]);
  rows.push(['time', `${s.seconds} s${s.quick ? ' (--quick)' : ''}`]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

main().catch((e) => {
  process.stderr.write(`reliability: ${String((e as Error)?.stack ?? e)}\n`);
  process.exitCode = 2;
});
