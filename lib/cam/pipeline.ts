/**
 * The model-agnostic half of an explanation: given what an adapter computed (A, dY/dA per round,
 * guided input gradients, logits), run the CAM kernels and assemble the ExplainResult.
 * Adapters never touch the kernels; the kernels never know the model.
 */
import { GradcamError } from '../errors';
import { getKernels } from '../kernels';
import type { DeviceRequest, FeatureShape, GradcamTailResult, Layout } from '../kernels/types';
import type { Explanation, ExplainResult, Method } from '../types';

export interface GradientRound {
  /** length n; -1 = no class for this image in this round */
  classes: Int32Array;
  /** dY/dA at the target layer, same layout as the activations; Y = sum_n s*logit[n,classes[n]], s = -1 if counterfactual */
  grads?: Float32Array;
  /** guided-ReLU input gradient dY/dx for the same Y, in the input's layout */
  guided?: Float32Array;
  /** a custom score's value per image (then classes are all -1 and every image is explained) */
  scores?: Float32Array;
}

export interface PipelineInput {
  method: Method;
  layer: string;
  counterfactual: boolean;
  inputShape: [number, number, number, number];
  layout: Layout;
  featureShape: FeatureShape;
  activations: Float32Array;
  logits: Float32Array;
  numClasses: number;
  rounds: GradientRound[];
  engine: string;
  device?: DeviceRequest;
  gradientsMs: number;
  /** performance.now() when the explain call started, for timings.totalMs */
  startedAt?: number;
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
export function inputDims(shape: [number, number, number, number], layout: Layout): { n: number; c: number; H: number; W: number } {
  return layout === 'nchw'
    ? { n: shape[0], c: shape[1], H: shape[2], W: shape[3] }
    : { n: shape[0], c: shape[3], H: shape[1], W: shape[2] };
}

function expectLength(what: string, a: Float32Array | undefined, length: number): Float32Array {
  if (!a || a.length !== length) {
    throw new GradcamError(`Internal error: the model adapter returned ${what} of length ${a?.length ?? 'none'}, expected ${length}`, 'EADAPTER');
  }
  return a;
}

export async function assembleResult(p: PipelineInput): Promise<ExplainResult> {
  const { n, c, H, W } = inputDims(p.inputShape, p.layout);
  const fs = p.featureShape;
  const needsCam = p.method !== 'guided-backprop';
  const needsGuided = p.method !== 'gradcam';
  const featureLen = fs.n * fs.k * fs.h * fs.w;
  const inputLen = n * c * H * W;
  if (fs.n !== n) throw new GradcamError(`Internal error: feature batch ${fs.n} differs from input batch ${n}`, 'EADAPTER');
  if (needsCam) expectLength('activations', p.activations, featureLen);
  expectLength('logits', p.logits, n * p.numClasses);

  const kernels = getKernels(p.device ?? 'auto');
  const probabilities = softmax(p.logits, p.numClasses);
  const perImage: Explanation[][] = Array.from({ length: n }, () => []);
  const t0 = performance.now();
  for (const round of p.rounds) {
    let tail: GradcamTailResult | undefined;
    let guided: Float32Array | undefined;
    let guidedCam: Float32Array | undefined;
    if (needsCam) {
      const grads = expectLength('gradients', round.grads, featureLen);
      tail = await kernels.async.gradcamTail(p.activations, grads, fs, { outH: H, outW: W, relu: true });
    }
    if (needsGuided) {
      guided = expectLength('guided gradients', round.guided, inputLen);
      if (tail) guidedCam = await kernels.async.guidedProduct(guided, tail.map, n, c, H, W, p.layout);
    }
    const hw = fs.h * fs.w;
    const img = c * H * W;
    for (let i = 0; i < n; i++) {
      const cls = round.classes[i];
      if (cls < 0 && !round.scores) continue;
      const raw = round.scores ? round.scores[i] : p.logits[i * p.numClasses + cls];
      const e: Explanation = {
        image: i,
        classIndex: round.scores ? -1 : cls,
        score: p.counterfactual ? -raw : raw,
        probability: round.scores ? NaN : probabilities[i * p.numClasses + cls],
      };
      if (tail) {
        e.weights = tail.weights.subarray(i * fs.k, (i + 1) * fs.k);
        e.lowresRaw = tail.lowresRaw.subarray(i * hw, (i + 1) * hw);
        e.lowres = tail.lowres.subarray(i * hw, (i + 1) * hw);
        e.map = tail.map.subarray(i * H * W, (i + 1) * H * W);
      }
      if (guided) e.guidedBackprop = guided.subarray(i * img, (i + 1) * img);
      if (guidedCam) e.guidedGradcam = guidedCam.subarray(i * img, (i + 1) * img);
      perImage[i].push(e);
    }
  }
  const kernelsMs = performance.now() - t0;
  const totalMs = p.startedAt !== undefined ? performance.now() - p.startedAt : p.gradientsMs + kernelsMs;
  return {
    method: p.method,
    layer: p.layer,
    counterfactual: p.counterfactual,
    inputShape: p.inputShape,
    layout: p.layout,
    mapSize: { h: fs.h, w: fs.w, k: fs.k },
    logits: p.logits,
    probabilities,
    numClasses: p.numClasses,
    explanations: perImage.flat(),
    engine: p.engine,
    device: kernels.device,
    timings: { gradientsMs: p.gradientsMs, kernelsMs, totalMs },
  };
}
