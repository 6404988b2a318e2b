/**
 * TEMPORARY: the generalized CAM tail (camTail) composed from today's kernels, until the fused
 * native camTail lands in lib/kernels. Same signature and numbers.
 */
import type { Kernels } from '../kernels';
import type { ElementwiseOp, FeatureShape, Layout } from '../kernels/types';
import type { ChannelWeighting } from './methods';

export type CamCombine =
  | { kind: 'weights'; weighting: ChannelWeighting; eps?: number }
  | { kind: 'given-weights'; weights: Float32Array[] }
  | { kind: 'elementwise'; op: ElementwiseOp }
  | { kind: 'given-lowres'; lowres: Float32Array[] };

export interface CamTailResult {
  rounds: number;
  weights?: Float32Array;
  lowresRaw: Float32Array;
  lowres: Float32Array;
  map: Float32Array;
  guided?: Float32Array;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function weightsOf(g: Float32Array, a: Float32Array, s: FeatureShape, weighting: ChannelWeighting, eps: number): Float32Array {
  const { n, k, h, w } = s;
  const hw = h * w;
  const out = new Float32Array(n * k);
  const at = (i: number, c: number, p: number) => (s.layout === 'nchw' ? (i * k + c) * hw + p : (i * hw + p) * k + c);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let sa = 0;
      for (let p = 0; p < hw; p++) sa += a[at(i, c, p)];
      let wsum = 0;
      let asum = 0;
      for (let p = 0; p < hw; p++) {
        const gv = g[at(i, c, p)];
        const av = a[at(i, c, p)];
        if (weighting === 'grad-mean') wsum += gv;
        else if (weighting === 'grad-act-ratio') wsum += gv * av;
        else {
          const g2 = gv * gv;
          const aij = gv === 0 ? 0 : g2 / (2 * g2 + sa * g2 * gv + eps);
          wsum += Math.max(gv, 0) * aij;
          asum += aij;
        }
      }
      if (weighting === 'grad-mean') wsum /= hw;
      else if (weighting === 'grad-act-ratio') wsum /= sa + eps;
      else if (weighting === 'grad-pp-normalized' && asum !== 0) wsum /= asum;
      out[i * k + c] = wsum;
    }
  }
  return out;
}

export async function camTail(
  kernels: Kernels, a: Float32Array, grads: Float32Array[] | null, shape: FeatureShape, combine: CamCombine,
  options: { outH: number; outW: number; relu?: boolean },
  guide?: { inputGrads: Float32Array[]; c: number; layout: Layout },
): Promise<CamTailResult> {
  const k = kernels.async;
  const { n, h, w } = shape;
  const R = combine.kind === 'given-lowres' ? combine.lowres.length : combine.kind === 'given-weights' ? combine.weights.length : (grads as Float32Array[]).length;
  const weights: Float32Array[] = [];
  const raws: Float32Array[] = [];
  const lows: Float32Array[] = [];
  const maps: Float32Array[] = [];
  const guided: Float32Array[] = [];
  for (let r = 0; r < R; r++) {
    let raw: Float32Array;
    if (combine.kind === 'given-lowres') raw = combine.lowres[r];
    else if (combine.kind === 'elementwise') {
      const g = (grads as Float32Array[])[r];
      if (combine.op === 'relu-of-grad-times-act') {
        raw = new Float32Array(n * h * w);
        const hw = h * w;
        for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
          let s = 0;
          for (let c = 0; c < shape.k; c++) {
            const idx = shape.layout === 'nchw' ? (i * shape.k + c) * hw + p : (i * hw + p) * shape.k + c;
            s += Math.max(g[idx] * a[idx], 0);
          }
          raw[i * hw + p] = s;
        }
      } else raw = await k.elementwiseChannelSum(g, a, shape, combine.op, false);
    } else {
      let wr: Float32Array;
      if (combine.kind === 'given-weights') wr = combine.weights[r];
      else if (combine.weighting === 'grad-mean') wr = await k.channelMean((grads as Float32Array[])[r], shape);
      else wr = weightsOf((grads as Float32Array[])[r], a, shape, combine.weighting, combine.eps ?? 1e-7);
      weights.push(wr);
      raw = await k.weightedChannelSum(wr, a, shape, false);
    }
    const relu = options.relu === false ? raw : raw.map((v) => Math.max(v, 0));
    const low = await k.minMaxNormalize(relu, n, h * w);
    const map = await k.minMaxNormalize(await k.resizeBilinear(low, n, h, w, options.outH, options.outW), n, options.outH * options.outW);
    raws.push(raw);
    lows.push(low);
    maps.push(map);
    if (guide) guided.push(await k.guidedProduct(guide.inputGrads[r], map, n, guide.c, options.outH, options.outW, guide.layout));
  }
  return {
    rounds: R,
    weights: weights.length ? concat(weights) : undefined,
    lowresRaw: concat(raws), lowres: concat(lows), map: concat(maps),
    guided: guide ? concat(guided) : undefined,
  };
}
