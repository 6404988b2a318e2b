/**
 * The one explain(): options, targets, rounds, timings and the result, for every method and every
 * model format. A method is data (lib/cam/methods); a model format is a ModelAdapter
 * (lib/cam/adapter.ts); the maps come from the kernels (lib/kernels).
 *
 *   options ─► request (layers, layer grads, input-gradient rule) ─► adapter.begin(batch): logits, A
 *          ─► targets resolved into rounds ─► per round: dY/dA, dY/dx ─► kernels: one call per layer
 *             for all rounds ─► multi-layer aggregation, augSmooth de-augmentation ─► ExplainResult
 */
import { GradcamError, checkBoolean, checkKnownKeys, checkOneOf, didYouMean, invalidRange, invalidType, rangeErrorOf } from '../errors';
import { getKernels, type Kernels } from '../kernels';
import type { CamCombine, CamGuide, CamTailResult, FeatureShape } from '../kernels/types';
import type { Explanation, ExplainOptions, ExplainResult, InputBatch, LayerMaps, Method } from '../types';
import type { AdapterPass, GradientRequest, LayerActivations, ModelAdapter, RoundGradients } from './adapter';
import { principalProjection } from './eigen';
import { DEFAULT_METHOD, GUIDED_RULE, METHOD_NAMES, camMethodOf, findMethod, type CamRecipe, type MethodDef, type ReluRule } from './methods';
import { isCustomScore, resolveTargets, targetRounds } from './targets';

/** Every option explain() takes: anything else is an error with a suggestion. */
export const EXPLAIN_OPTIONS = [
  'method', 'layer', 'targets', 'counterfactual', 'device', 'guidedRelu6', 'guided', 'augSmooth', 'eigenSmooth', 'gradcamPlusPlus',
] as const;

/** The factors and flips of augSmooth, in batch order; copy AUG_IDENTITY is the unaugmented image. */
export const AUG_COPIES: ReadonlyArray<{ flip: boolean; factor: number }> = [
  { flip: false, factor: 0.9 }, { flip: false, factor: 1 }, { flip: false, factor: 1.1 },
  { flip: true, factor: 0.9 }, { flip: true, factor: 1 }, { flip: true, factor: 1.1 },
];
const AUG_IDENTITY = 1;

export interface ParsedOptions {
  method: MethodDef;
  /** the CAM recipe used (absent for input-gradient methods) */
  cam?: CamRecipe;
  layers: string[];
  counterfactual: boolean;
  guidedRelu6: boolean;
  /** the map is multiplied with guided backprop */
  guided: boolean;
  augSmooth: boolean;
  eigenSmooth: boolean;
  request: GradientRequest;
  options: ExplainOptions;
}

/** Validates explain() options against the registry and the adapter. */
export function parseOptions(adapter: ModelAdapter, options: unknown): ParsedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidType('options', 'object', options);
  checkKnownKeys('explain options', options, EXPLAIN_OPTIONS);
  const o = options as ExplainOptions;
  const bool = (name: keyof ExplainOptions) => (o[name] === undefined ? false : checkBoolean(name, o[name]));
  let method: MethodDef;
  if (o.method === undefined) method = findMethod(DEFAULT_METHOD) as MethodDef;
  else {
    if (typeof o.method !== 'string') throw invalidType('method', `one of ${METHOD_NAMES.map((m) => `'${m}'`).join(', ')}`, o.method);
    const found = findMethod(o.method);
    if (!found) {
      throw rangeErrorOf(`Expected one of ${METHOD_NAMES.map((m) => `'${m}'`).join(', ')} for method but received '${o.method}' of type string${didYouMean(o.method, METHOD_NAMES)}`);
    }
    method = found;
  }
  const counterfactual = bool('counterfactual');
  const guidedRelu6 = bool('guidedRelu6');
  const augSmooth = bool('augSmooth');
  const eigenSmooth = bool('eigenSmooth');
  const camDef = camMethodOf(method);
  let cam = camDef.cam;
  const guided = bool('guided') || method.guidedOf !== undefined;
  if (!cam) {
    if (o.guided) throw invalidRange('guided', `false for method '${method.name}' (guided multiplies a CAM method's map with guided backprop)`, o.guided);
    if (augSmooth) throw invalidRange('augSmooth', `false for method '${method.name}' (augSmooth averages CAM maps)`, o.augSmooth);
    if (eigenSmooth) throw invalidRange('eigenSmooth', `false for method '${method.name}' (eigenSmooth applies to CAM methods)`, o.eigenSmooth);
  }
  if (o.gradcamPlusPlus !== undefined) {
    const pp = checkOneOf('gradcamPlusPlus', o.gradcamPlusPlus, ['pytorch-grad-cam', 'original'] as const);
    if (pp === 'original' && cam?.kind === 'weights' && cam.weighting === 'grad-pp') cam = { ...cam, weighting: 'grad-pp-normalized' };
  }
  let layers: string[] = [];
  if (cam) {
    const given = o.layer === undefined ? [adapter.defaultLayer] : typeof o.layer === 'string' ? [o.layer] : o.layer;
    if (!Array.isArray(given) || given.length === 0 || given.some((l) => typeof l !== 'string')) {
      throw invalidType('layer', 'layer name (string) or a non-empty array of layer names', o.layer);
    }
    layers = given.map((l) => adapter.resolveLayer(l));
    if (new Set(layers).size !== layers.length) throw invalidRange('layer', 'distinct layer names', o.layer);
  }
  if (o.targets !== undefined && isCustomScore(o.targets) && !adapter.supportsCustomScore) {
    throw new GradcamError('A custom score function (targets.score) needs a TensorFlow.js model: ONNX models are explained for class indices', 'EUNSUPPORTED');
  }
  const inputGradient: ReluRule | undefined = method.inputGradient ?? (guided ? GUIDED_RULE : undefined);
  const needsLayerGrads = !!cam && (camDef.layerGrads || (eigenSmooth && cam.kind !== 'projection' ? true : false));
  const request: GradientRequest = {
    layers, layerGrads: needsLayerGrads, inputGradient, guidedRelu6, counterfactual,
    score: isCustomScore(o.targets) ? o.targets.score : undefined,
  };
  const unsupported = adapter.unsupported(request);
  if (unsupported) throw unsupported;
  if (inputGradient && inputGradient !== 'plain' && !guidedRelu6) warnNoRuleActivations(adapter, inputGradient, method.name);
  return { method, cam, layers, counterfactual, guidedRelu6, guided, augSmooth, eigenSmooth, request, options: o };
}

const warnedNoRule = new WeakSet<ModelAdapter>();

/**
 * Once per model: the guided/deconvnet rule applies to no feature-map activation because every ReLU-like op
 * is a ReLU6/Clip (MobileNets) and guidedRelu6 is off, the Python libraries' default; the input
 * gradient is then the plain gradient. Says how to change it. GRADCAM_QUIET=1 silences it.
 */
function warnNoRuleActivations(adapter: ModelAdapter, rule: ReluRule, method: string): void {
  if (!adapter.ruleActivations || warnedNoRule.has(adapter)) return;
  const without = adapter.ruleActivations(false);
  if (without === undefined || without > 0 || !((adapter.ruleActivations(true) ?? 0) > 0)) return;
  warnedNoRule.add(adapter);
  if (process.env.GRADCAM_QUIET === '1') return;
  console.warn(
    `gradcam-node: the ${rule} ReLU rule of '${method}' applies to no feature-map activation of this model: its ReLU-like activations there are all ` +
      'ReLU6/Clip, which keep their plain gradient by default (as in pytorch-grad-cam), so the input gradient is the plain one; ' +
      'pass guidedRelu6: true (CLI: --guided-relu6) to apply the rule to them',
  );
}

/** Row-wise softmax of [n, numClasses] logits, computed stably in float64. */
export function softmax(logits: Float32Array, numClasses: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length; r += numClasses) {
    let max = -Infinity;
    for (let j = 0; j < numClasses; j++) max = Math.max(max, logits[r + j]);
    let sum = 0;
    for (let j = 0; j < numClasses; j++) sum += Math.exp(logits[r + j] - max);
    for (let j = 0; j < numClasses; j++) out[r + j] = Math.exp(logits[r + j] - max) / sum;
  }
  return out;
}

/** Input spatial size and channel count from the input shape and layout. */
export function inputDims(shape: readonly number[], layout: 'nchw' | 'nhwc'): { n: number; c: number; H: number; W: number } {
  return layout === 'nchw'
    ? { n: shape[0], c: shape[1], H: shape[2], W: shape[3] }
    : { n: shape[0], c: shape[3], H: shape[1], W: shape[2] };
}

/** The six augSmooth copies of a batch, copy-major: [copy0 images..., copy1 images..., ...]; into `out` when given. */
export function augmentBatch(b: InputBatch, out: Float32Array = new Float32Array(b.data.length * AUG_COPIES.length)): InputBatch {
  const { n, c, H, W } = inputDims(b.shape, b.layout);
  const per = c * H * W;
  AUG_COPIES.forEach(({ flip, factor }, a) => {
    for (let i = 0; i < n; i++) {
      const src = i * per;
      const dst = (a * n + i) * per;
      for (let j = 0; j < per; j++) {
        let from = j;
        if (flip) {
          // mirror the x coordinate
          if (b.layout === 'nchw') {
            const x = j % W;
            from = j - x + (W - 1 - x);
          } else {
            const x = Math.floor(j / c) % W;
            from = j + (W - 1 - 2 * x) * c;
          }
        }
        out[dst + j] = b.data[src + from] * factor;
      }
    }
  });
  return { data: out, shape: [n * AUG_COPIES.length, b.shape[1], b.shape[2], b.shape[3]], layout: b.layout };
}

/** Mean of the six de-augmented maps [6n, H, W] of one round -> [n, H, W]. */
function deaugment(maps: Float32Array, n: number, H: number, W: number): Float32Array {
  const hw = H * W;
  const out = new Float32Array(n * hw);
  const acc = new Float64Array(hw);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    AUG_COPIES.forEach(({ flip }, a) => {
      const src = (a * n + i) * hw;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) acc[y * W + x] += maps[src + y * W + (flip ? W - 1 - x : x)];
      }
    });
    // float32 mean, as np.mean(np.float32(cams), axis=0)
    for (let p = 0; p < hw; p++) out[i * hw + p] = acc[p] / AUG_COPIES.length;
  }
  return out;
}

function adapterError(what: string, got: number | string, expected: number): never {
  throw new GradcamError(`Internal error: the model adapter returned ${what} of length ${got}, expected ${expected}`, 'EADAPTER');
}

/** First index of a non-finite value, or -1. */
function firstNonFinite(a: Float32Array, start = 0, end = a.length): number {
  for (let i = start; i < end; i++) if (a[i] - a[i] !== 0) return i;
  return -1;
}

/** ENONFINITE: names what was non-finite, for which images. */
export class NonFiniteError extends GradcamError {
  constructor(what: string, readonly images: number[], detail: string) {
    super(`Non-finite ${what} for image${images.length > 1 ? 's' : ''} ${images.join(', ')}${detail}: the model produced NaN or Infinity ` +
      '(a NaN weight, or inputs so large that the network overflows); no map was made', 'ENONFINITE');
  }
}

/** Throws NonFiniteError when any image's slice of `a` (per-image length `per`) is not finite. */
function checkFinite(what: string, a: Float32Array, n: number, detail: (images: number[]) => string, imageOf = (i: number) => i): void {
  const per = a.length / n;
  const bad: number[] = [];
  for (let i = 0; i < n; i++) {
    if (firstNonFinite(a, i * per, (i + 1) * per) >= 0 && !bad.includes(imageOf(i))) bad.push(imageOf(i));
  }
  if (bad.length) throw new NonFiniteError(what, bad, detail(bad));
}

/** The low-resolution map source of a recipe for one layer and all rounds. */
function combineOf(cam: CamRecipe, eigenSmooth: boolean): CamCombine | 'projection' {
  if (cam.kind === 'projection' || eigenSmooth) return 'projection';
  if (cam.kind === 'weights') return { kind: 'weights', weighting: cam.weighting, eps: cam.eps };
  return { kind: 'elementwise', op: cam.op };
}

/** The matrix whose principal component is the map (eigen methods, eigenSmooth), for one round. */
function projectionSource(cam: CamRecipe, a: Float32Array, g: Float32Array | undefined, weights: Float32Array | undefined, s: FeatureShape): Float32Array {
  if (cam.kind === 'projection' && cam.of === 'activations') return a;
  const out = new Float32Array(a.length);
  if (cam.kind === 'projection') {
    for (let i = 0; i < a.length; i++) out[i] = (g as Float32Array)[i] * a[i];
  } else if (cam.kind === 'elementwise') {
    for (let i = 0; i < a.length; i++) out[i] = cam.f((g as Float32Array)[i], a[i]);
  } else {
    const w = weights as Float32Array;
    const hw = s.h * s.w;
    for (let i = 0; i < a.length; i++) {
      const img = Math.floor(i / (s.k * hw));
      const ch = s.layout === 'nchw' ? Math.floor(i / hw) % s.k : i % s.k;
      out[i] = w[img * s.k + ch] * a[i];
    }
  }
  return out;
}

interface LayerResult {
  layer: LayerActivations;
  tail: CamTailResult;
}

/** One layer's maps for all rounds: one kernel call (A crosses once), plus the eigen path where asked. */
async function layerMaps(
  kernels: Kernels, p: ParsedOptions, layer: LayerActivations, grads: Float32Array[], rounds: number,
  size: { H: number; W: number }, guide?: CamGuide,
): Promise<CamTailResult> {
  const camTail = kernels.async.camTail;
  const cam = p.cam as CamRecipe;
  const combine = combineOf(cam, p.eigenSmooth);
  const opts = { outH: size.H, outW: size.W, relu: true };
  if (combine !== 'projection') return camTail(layer.data, grads, layer.shape, combine, opts, guide);
  // eigen: weights first where the recipe has them, then the principal component of the weighted activations
  let weights: Float32Array | undefined;
  if (cam.kind === 'weights') {
    weights = (await camTail(layer.data, grads, layer.shape, { kind: 'weights', weighting: cam.weighting, eps: cam.eps }, opts)).weights;
  }
  const per = layer.shape.n * layer.shape.k;
  const lowres: Float32Array[] = [];
  let shared: Float32Array | undefined;
  for (let r = 0; r < rounds; r++) {
    if (cam.kind === 'projection' && cam.of === 'activations') {
      // class-independent: one projection serves every round
      shared ??= principalProjection(layer.data, layer.shape);
      lowres.push(shared);
      continue;
    }
    const w = weights?.subarray(r * per, (r + 1) * per);
    lowres.push(principalProjection(projectionSource(cam, layer.data, grads[r], w, layer.shape), layer.shape));
  }
  const tail = await camTail(layer.data, null, layer.shape, { kind: 'given-lowres', lowres }, opts, guide);
  if (weights) tail.weights = weights;
  return tail;
}

/** Builds ahead what explain() with these options needs (Explainer.prepare). */
export async function prepare(adapter: ModelAdapter, options?: unknown, inputSize?: [number, number]): Promise<void> {
  if (inputSize !== undefined && (!Array.isArray(inputSize) || inputSize.length !== 2 || !inputSize.every((v) => Number.isInteger(v) && v > 0))) {
    throw invalidType('inputSize', '[height, width] (positive integers)', inputSize);
  }
  const p = parseOptions(adapter, options);
  await adapter.prepare?.(p.request, inputSize);
}

/**
 * Marks an Explainer whose explain() copies the batch when called (before it returns its Promise),
 * as explain() below does: explainStream then reuses its batch arrays from call to call.
 */
export const COPIES_INPUT: unique symbol = Symbol.for('gradcam-node.explainCopiesInput');

/**
 * Explains a batch with a model adapter. The batch is copied when the call starts: changing the
 * caller's array afterwards (before the Promise settles) does not change the result.
 */
export async function explain(adapter: ModelAdapter, input: unknown, options?: unknown): Promise<ExplainResult> {
  const startedAt = performance.now();
  const p = parseOptions(adapter, options);
  const checked = adapter.checkInput(input);
  const shape = [...checked.shape] as InputBatch['shape'];
  const kernels = getKernels(p.options.device ?? 'auto');
  const { n, c, H, W } = inputDims(shape, checked.layout);
  const copies = p.augSmooth ? AUG_COPIES.length : 1;
  // this call's own copy of the batch (augSmooth: the augmented copies), made now: the caller may
  // change its array before the Promise settles; in the adapter's array where it has one
  const own = adapter.inputArray?.(checked.data.length * copies);
  let batch: InputBatch;
  try {
    const data = p.augSmooth ? augmentBatch(checked, own?.data).data : own ? (own.data.set(checked.data), own.data) : checked.data.slice();
    batch = { data, shape: p.augSmooth ? [n * copies, shape[1], shape[2], shape[3]] : shape, layout: checked.layout };
  } catch (e) {
    own?.release();
    throw e;
  }
  const original: { shape: InputBatch['shape']; layout: InputBatch['layout'] } = { shape, layout: checked.layout };
  // begin() may take the batch's buffer (it is this call's own copy): only its size is read after
  const batchLength = batch.data.length;
  const imageOf = (i: number) => i % n;

  const t0 = performance.now();
  let gradientsMs = 0;
  let pass: AdapterPass | undefined;
  try {
    pass = await adapter.begin(batch, p.request);
    gradientsMs += performance.now() - t0;
    const { numClasses } = pass;
    checkFinite('logits', pass.logits, n * copies, () => '', imageOf);
    // classes come from the unaugmented images
    const baseLogits = p.augSmooth ? pass.logits.subarray(AUG_IDENTITY * n * numClasses, (AUG_IDENTITY + 1) * n * numClasses) : pass.logits;
    const custom = p.request.score !== undefined;
    const classRounds = custom ? [new Int32Array(n).fill(-1)] : targetRounds(resolveTargets(p.options.targets, baseLogits, n, numClasses));
    const rounds: RoundGradients[] = [];
    for (const classes of classRounds) {
      const t = performance.now();
      const all = p.augSmooth ? Int32Array.from({ length: n * copies }, (_, i) => classes[i % n]) : classes;
      const r = await pass.round(all);
      gradientsMs += performance.now() - t;
      const cls = (imgs: number[]) => (custom ? '' : ` (class ${imgs.map((i) => classes[i]).join(', ')})`);
      if (r.layerGrads.length !== (p.request.layerGrads ? p.layers.length : r.layerGrads.length)) adapterError('layer gradients', r.layerGrads.length, p.layers.length);
      r.layerGrads.forEach((g, l) => {
        if (g.length !== pass?.activations[l]?.data.length) adapterError(`gradients at layer '${p.layers[l]}'`, g.length, pass?.activations[l]?.data.length ?? 0);
      });
      if (p.request.inputGradient && r.inputGradient?.length !== batchLength) adapterError('input gradients', r.inputGradient?.length ?? 'none', batchLength);
      r.layerGrads.forEach((g, l) => checkFinite(`gradient dY/dA at layer '${p.layers[l]}'`, g, n * copies, cls, imageOf));
      if (r.inputGradient) checkFinite('input gradient dY/dx', r.inputGradient, n * copies, cls, imageOf);
      rounds.push(r);
    }
    const R = rounds.length;
    const k0 = performance.now();
    const activations = pass.activations;
    if (activations.length !== p.layers.length) adapterError('activations for layers', activations.length, p.layers.length);
    activations.forEach((a) => {
      const { n: an, k, h, w } = a.shape;
      if (an !== n * copies || a.data.length !== an * k * h * w) adapterError(`activations at layer '${a.name}'`, a.data.length, n * copies * k * h * w);
    });
    activations.forEach((a) => checkFinite(`activations at layer '${a.name}'`, a.data, n * copies, () => '', imageOf));

    // one kernel call per layer for every round; the guided product fused where one layer and no augSmooth
    const inputGrads = rounds.map((r) => r.inputGradient as Float32Array);
    const fuseGuide = p.guided && activations.length === 1 && !p.augSmooth;
    const guide = fuseGuide ? { inputGrads, c, layout: batch.layout } : undefined;
    const results: LayerResult[] = [];
    for (const [l, layer] of activations.entries()) {
      const grads = rounds.map((r) => r.layerGrads[l]);
      results.push({ layer, tail: await layerMaps(kernels, p, layer, grads, R, { H, W }, guide) });
    }
    results.forEach(({ layer, tail }) => checkFinite(`map at layer '${layer.name}'`, tail.lowresRaw, R * n * copies, () => '', (i) => i % n));

    // per round [n*copies, H, W] final maps: one layer as the kernel made it, several aggregated
    const nb = n * copies;
    let maps: Float32Array[] = [];
    if (results.length === 1) {
      const m = results[0].tail.map;
      maps = Array.from({ length: R }, (_, r) => m.subarray(r * nb * H * W, (r + 1) * nb * H * W));
    } else if (results.length > 1) {
      const ups: Float32Array[] = [];
      for (const { layer, tail } of results) {
        ups.push(await kernels.async.resizeBilinear(tail.lowres, R * nb, layer.shape.h, layer.shape.w, H, W));
      }
      const sum = new Float32Array(R * nb * H * W);
      for (const up of ups) for (let i = 0; i < sum.length; i++) sum[i] += Math.max(up[i], 0);
      for (let i = 0; i < sum.length; i++) sum[i] /= ups.length;
      const agg = await kernels.async.minMaxNormalize(sum, R * nb, H * W);
      maps = Array.from({ length: R }, (_, r) => agg.subarray(r * nb * H * W, (r + 1) * nb * H * W));
    }
    if (p.augSmooth) maps = maps.map((m) => deaugment(m, n, H, W));
    // the guided product where it was not fused: with the unaugmented image's guided backprop
    let guidedMaps: Float32Array[] | undefined;
    if (fuseGuide) {
      const gm = results[0].tail.guided as Float32Array;
      const per = n * c * H * W;
      guidedMaps = Array.from({ length: R }, (_, r) => gm.subarray(r * per, (r + 1) * per));
    } else if (p.guided) {
      guidedMaps = [];
      for (let r = 0; r < R; r++) {
        guidedMaps.push(await kernels.async.guidedProduct(identityCopy(inputGrads[r], n, copies), maps[r], n, c, H, W, batch.layout));
      }
    }
    const kernelsMs = performance.now() - k0;

    // assemble, image-major
    const probabilities = softmax(pass.logits, numClasses);
    const perImage: Explanation[][] = Array.from({ length: n }, () => []);
    const first = results[0];
    const hw0 = first ? first.layer.shape.h * first.layer.shape.w : 0;
    const k0c = first ? first.layer.shape.k : 0;
    const img = c * H * W;
    const row = p.augSmooth ? AUG_IDENTITY * n : 0; // the unaugmented copy's rows
    for (let r = 0; r < R; r++) {
      const round = rounds[r];
      for (let i = 0; i < n; i++) {
        const cls = classRounds[r][i];
        if (cls < 0 && !round.scores) continue;
        const bi = row + i; // row of this image in the (augmented) batch
        const raw = round.scores ? round.scores[bi] : pass.logits[bi * numClasses + cls];
        const e: Explanation = {
          image: i,
          classIndex: round.scores ? -1 : cls,
          score: p.counterfactual ? -raw : raw,
          probability: round.scores ? NaN : probabilities[bi * numClasses + cls],
        };
        if (maps.length) e.map = maps[r].subarray(i * H * W, (i + 1) * H * W);
        if (results.length === 1 && !p.augSmooth) {
          const t = first.tail;
          const o = (r * nb + i) * hw0;
          if (t.weights) e.weights = t.weights.subarray((r * nb + i) * k0c, (r * nb + i + 1) * k0c);
          e.lowresRaw = t.lowresRaw.subarray(o, o + hw0);
          e.lowres = t.lowres.subarray(o, o + hw0);
        } else if (results.length > 1 && !p.augSmooth) {
          e.layerMaps = results.map(({ layer, tail }): LayerMaps => {
            const hw = layer.shape.h * layer.shape.w;
            const o = (r * nb + i) * hw;
            const k = layer.shape.k;
            return {
              layer: layer.name,
              weights: tail.weights?.subarray((r * nb + i) * k, (r * nb + i + 1) * k),
              lowresRaw: tail.lowresRaw.subarray(o, o + hw),
              lowres: tail.lowres.subarray(o, o + hw),
            };
          });
        }
        if (round.inputGradient) e.inputGradient = round.inputGradient.subarray(bi * img, (bi + 1) * img);
        if (guidedMaps) e.guidedMap = guidedMaps[r].subarray(i * img, (i + 1) * img);
        perImage[i].push(e);
      }
    }
    const fs0 = first?.layer.shape;
    const logits = p.augSmooth ? pass.logits.slice(row * numClasses, (row + n) * numClasses) : pass.logits;
    return {
      method: p.method.name as Method,
      layer: p.layers[0] ?? '',
      layers: p.layers,
      reluRule: p.request.inputGradient,
      guided: p.guided,
      counterfactual: p.counterfactual,
      inputShape: original.shape,
      layout: original.layout,
      mapSize: fs0 ? { h: fs0.h, w: fs0.w, k: fs0.k } : { h: 0, w: 0, k: 0 },
      logits,
      probabilities: p.augSmooth ? softmax(logits, numClasses) : probabilities,
      numClasses,
      explanations: perImage.flat(),
      engine: adapter.engine,
      device: kernels.device,
      timings: { gradientsMs, kernelsMs, totalMs: performance.now() - startedAt },
    };
  } finally {
    pass?.release();
    own?.release();
  }
}

/** The unaugmented copy's rows of an augmented batch's array (the array itself without augSmooth). */
function identityCopy(a: Float32Array, n: number, copies: number): Float32Array {
  if (copies === 1) return a;
  const per = a.length / copies;
  return a.subarray(AUG_IDENTITY * per, (AUG_IDENTITY + 1) * per);
}
