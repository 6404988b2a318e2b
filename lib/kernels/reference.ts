/**
 * The pure-TypeScript twins of every CAM kernel: the readable definition of what the native
 * addon (native/*.cc, *.cu) computes, and the 'js' device when the addon is not built.
 *
 * These functions do NOT validate their arguments (lib/kernels/validate.ts does, in
 * getKernels()); called directly with bad shapes they read out of bounds as undefined/NaN.
 *
 * Numerics (the native kernels follow the same rules, so the two agree to float32 rounding):
 *  - Inputs are float32. Every reduction (a channel sum over i,j; a weighted sum over k)
 *    accumulates in float64 in a fixed order and is rounded to float32 once at the end:
 *      channel sums: over the spatial positions in row-major order (i ascending, then j);
 *      sums over channels: k ascending.
 *    A product of two float32 values is exact in float64, so g*A and w*A carry no rounding;
 *    g^3 is rounded to float64 once.
 *  - channelMean = float32(sum / (h*w)), the division done in float64.
 *  - Element-wise float32 operations (x - min, x / d, G * cam) are computed in float64 and
 *    rounded with Math.fround: for one +, -, *, / of two float32 values that equals the
 *    float32 operation exactly (float64 has more than 2*24+2 bits), so these match C++ `float`.
 *  - minMaxNormalize follows pytorch-grad-cam's numpy code: m = min(x); y = float32(x - m);
 *    d = float32(1e-7 + max(y)) (the sum in float64, as numpy promotes the scalar);
 *    out = float32(y / d). An all-zero (or constant) image gives all zeros.
 *  - resizeBilinear computes source coordinates and weights in float64 (see sourceIndex) and
 *    the interpolated value as
 *      float32( (1-ly)*((1-lx)*v00 + lx*v01) + ly*((1-lx)*v10 + lx*v11) )  in float64.
 */

import type {
  CamCombine,
  CamGuide,
  CamTailOptions,
  CamTailResult,
  ChannelSums,
  ChannelWeighting,
  ElementwiseOp,
  FeatureShape,
  GradcamTailOptions,
  GradcamTailResult,
  KernelsSync,
  Layout,
  ResizeOptions,
} from './types';

import { pictureReference } from './pictures';

const fround = Math.fround;

/**
 * The loops below walk memory in order for either layout, keeping one float64 accumulator
 * per output value, so the summation order per value is the documented one
 * (spatial positions p = i*w + j ascending; channels k ascending).
 */

function channelMean(x: Float32Array, shape: FeatureShape): Float32Array {
  const { n, k, h, w } = shape;
  const hw = h * w;
  const out = new Float32Array(n * k);
  const acc = new Float64Array(k);
  for (let b = 0; b < n; b++) {
    const base = b * k * hw;
    acc.fill(0);
    if (shape.layout === 'nchw') {
      for (let ch = 0; ch < k; ch++) {
        const o = base + ch * hw;
        let s = 0;
        for (let p = 0; p < hw; p++) s += x[o + p];
        acc[ch] = s;
      }
    } else {
      for (let p = 0; p < hw; p++) {
        const o = base + p * k;
        for (let ch = 0; ch < k; ch++) acc[ch] += x[o + ch];
      }
    }
    for (let ch = 0; ch < k; ch++) out[b * k + ch] = acc[ch] / hw;
  }
  return out;
}

function channelSums(g: Float32Array, a: Float32Array, shape: FeatureShape): ChannelSums {
  const { n, k, h, w } = shape;
  const hw = h * w;
  const nchw = shape.layout === 'nchw';
  const sums = [0, 1, 2, 3, 4].map(() => new Float32Array(n * k));
  const acc = [0, 1, 2, 3, 4].map(() => new Float64Array(k));
  const [s1, s2, s3, sA, sGA] = acc;
  for (let b = 0; b < n; b++) {
    const base = b * k * hw;
    for (const arr of acc) arr.fill(0);
    const add = (o: number, ch: number): void => {
      const gv = g[o];
      const av = a[o];
      const g2 = gv * gv;
      s1[ch] += gv;
      s2[ch] += g2;
      s3[ch] += g2 * gv;
      sA[ch] += av;
      sGA[ch] += gv * av;
    };
    // memory order for either layout; per channel, p ascending either way
    if (nchw) {
      for (let ch = 0; ch < k; ch++) for (let p = 0; p < hw; p++) add(base + ch * hw + p, ch);
    } else {
      for (let p = 0; p < hw; p++) for (let ch = 0; ch < k; ch++) add(base + p * k + ch, ch);
    }
    for (let q = 0; q < 5; q++) for (let ch = 0; ch < k; ch++) sums[q][b * k + ch] = acc[q][ch];
  }
  return { g: sums[0], g2: sums[1], g3: sums[2], a: sums[3], ga: sums[4] };
}

/** f(g, A) of an element-wise op, in float64 (a product of two float32 values is exact). */
function elementwiseTerm(op: ElementwiseOp, gv: number, av: number): number {
  if (op === 'grad-times-act') return gv * av;
  if (op === 'relu-grad-times-act') return (gv < 0 ? 0 : gv) * av;
  const f = gv * av; // 'relu-of-grad-times-act'
  return f < 0 ? 0 : f;
}

/**
 * cam[b,p] = sum_k f[b,k,p], then ReLU when `relu`: f = weights[b,k] * A (weightedChannelSum)
 * when `weights` is given, else f = elementwiseTerm(op, g, A) (elementwiseChannelSum).
 */
function channelSum(
  a: Float32Array,
  shape: FeatureShape,
  weights: Float32Array | null,
  g: Float32Array | null,
  op: ElementwiseOp,
  relu: boolean,
  into?: Float32Array,
): Float32Array {
  const { n, k, h, w } = shape;
  const hw = h * w;
  const out = into ?? new Float32Array(n * hw);
  const acc = new Float64Array(hw);
  for (let b = 0; b < n; b++) {
    const base = b * k * hw;
    if (shape.layout === 'nchw') {
      acc.fill(0);
      for (let ch = 0; ch < k; ch++) {
        const o = base + ch * hw;
        if (weights) {
          const wk = weights[b * k + ch];
          for (let p = 0; p < hw; p++) acc[p] += wk * a[o + p];
        } else {
          for (let p = 0; p < hw; p++) acc[p] += elementwiseTerm(op, g![o + p], a[o + p]);
        }
      }
    } else {
      for (let p = 0; p < hw; p++) {
        const o = base + p * k;
        let s = 0;
        if (weights) {
          for (let ch = 0; ch < k; ch++) s += weights[b * k + ch] * a[o + ch];
        } else {
          for (let ch = 0; ch < k; ch++) s += elementwiseTerm(op, g![o + ch], a[o + ch]);
        }
        acc[p] = s;
      }
    }
    for (let p = 0; p < hw; p++) {
      const v = fround(acc[p]);
      out[b * hw + p] = relu && v < 0 ? 0 : v;
    }
  }
  return out;
}

function weightedChannelSum(weights: Float32Array, a: Float32Array, shape: FeatureShape, relu: boolean): Float32Array {
  return channelSum(a, shape, weights, null, 'grad-times-act', relu);
}

function elementwiseChannelSum(
  g: Float32Array,
  a: Float32Array,
  shape: FeatureShape,
  op: ElementwiseOp,
  relu: boolean,
): Float32Array {
  return channelSum(a, shape, null, g, op, relu);
}

/**
 * Source coordinate of output index `dst` along one axis (the one place this math lives):
 *  - half-pixel centres (default; OpenCV INTER_LINEAR, torch align_corners=False):
 *      src = max((dst + 0.5) * inSize / outSize - 0.5, 0)
 *  - align corners: src = dst * (inSize - 1) / (outSize - 1), and 0 when outSize == 1.
 * Returns the two neighbours (i1 clamped to the edge) and the weight of i1.
 */
function sourceIndex(dst: number, inSize: number, outSize: number, alignCorners: boolean): [number, number, number] {
  let src: number;
  if (alignCorners) {
    src = outSize > 1 ? (dst * (inSize - 1)) / (outSize - 1) : 0;
  } else {
    src = ((dst + 0.5) * inSize) / outSize - 0.5;
    if (src < 0) src = 0;
  }
  let i0 = Math.floor(src);
  if (i0 > inSize - 1) i0 = inSize - 1;
  const i1 = Math.min(i0 + 1, inSize - 1);
  return [i0, i1, src - i0];
}

function resizeBilinear(
  x: Float32Array,
  n: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
  options?: ResizeOptions,
  into?: Float32Array,
): Float32Array {
  const ac = options?.alignCorners === true;
  // index and weight tables, computed once per output row and column
  const y0 = new Int32Array(outH);
  const y1 = new Int32Array(outH);
  const ly = new Float64Array(outH);
  for (let y = 0; y < outH; y++) [y0[y], y1[y], ly[y]] = sourceIndex(y, h, outH, ac);
  const x0 = new Int32Array(outW);
  const x1 = new Int32Array(outW);
  const lx = new Float64Array(outW);
  for (let xx = 0; xx < outW; xx++) [x0[xx], x1[xx], lx[xx]] = sourceIndex(xx, w, outW, ac);

  const out = into ?? new Float32Array(n * outH * outW);
  for (let b = 0; b < n; b++) {
    const src = b * h * w;
    const dst = b * outH * outW;
    for (let y = 0; y < outH; y++) {
      const r0 = src + y0[y] * w;
      const r1 = src + y1[y] * w;
      const wy = ly[y];
      for (let xx = 0; xx < outW; xx++) {
        const wx = lx[xx];
        const top = (1 - wx) * x[r0 + x0[xx]] + wx * x[r0 + x1[xx]];
        const bottom = (1 - wx) * x[r1 + x0[xx]] + wx * x[r1 + x1[xx]];
        out[dst + y * outW + xx] = (1 - wy) * top + wy * bottom;
      }
    }
  }
  return out;
}

/** Normalizes `size` values of image b of x into out (x and out may be the same array). */
function normalizeImage(x: Float32Array, out: Float32Array, offset: number, size: number): void {
  let min = Infinity;
  for (let p = 0; p < size; p++) if (x[offset + p] < min) min = x[offset + p];
  let max = -Infinity;
  for (let p = 0; p < size; p++) {
    const y = fround(x[offset + p] - min);
    out[offset + p] = y;
    if (y > max) max = y;
  }
  const d = fround(1e-7 + max);
  for (let p = 0; p < size; p++) out[offset + p] = out[offset + p] / d;
}

function minMaxNormalize(x: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(n * size);
  for (let b = 0; b < n; b++) normalizeImage(x, out, b * size, size);
  return out;
}

function guidedProduct(
  guided: Float32Array,
  cam: Float32Array,
  n: number,
  c: number,
  H: number,
  W: number,
  layout: Layout,
  into?: Float32Array,
): Float32Array {
  const hw = H * W;
  const out = into ?? new Float32Array(n * c * hw);
  if (layout === 'nchw') {
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * hw;
        for (let p = 0; p < hw; p++) out[o + p] = guided[o + p] * cam[b * hw + p];
      }
    }
  } else {
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        const m = cam[b * hw + p];
        const o = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) out[o + ch] = guided[o + ch] * m;
      }
    }
  }
  return out;
}

/** The default eps of the 'grad-pp', 'grad-pp-normalized' and 'grad-act-ratio' weightings. */
export const DEFAULT_CAM_EPS = 1e-7;

/**
 * Channel weights w[b,k] of one round from G (and A), into `out` [n*k]. Per channel, every sum is
 * over the spatial positions p ascending in float64, rounded to float32 once:
 *  - 'grad-mean': channelMean(g).
 *  - 'grad-pp': S_A = sum_p A first; then per p with G != 0: g2 = G*G (exact), g3 = g2*G,
 *    a_p = g2 / ((2*g2 + S_A*g3) + eps), num += max(G,0)*a_p, den += a_p;
 *    w = float32(num). 'grad-pp-normalized': w = float32(den != 0 ? num / den : num)
 *    (the authors' alpha / sum alpha, divided once per channel instead of once per position).
 *  - 'grad-act-ratio': w = float32(sum_p G*A / (S_A + eps)).
 */
function channelWeights(g: Float32Array, a: Float32Array, shape: FeatureShape, weighting: ChannelWeighting, eps: number, out: Float32Array): void {
  if (weighting === 'grad-mean') {
    out.set(channelMean(g, shape));
    return;
  }
  const { n, k, h, w } = shape;
  const hw = h * w;
  // channel (b, ch) position p at base + ch*chStep + p*pStep
  const chStep = shape.layout === 'nchw' ? hw : 1;
  const pStep = shape.layout === 'nchw' ? 1 : k;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < k; ch++) {
      const o = b * k * hw + ch * chStep;
      let sA = 0;
      for (let p = 0; p < hw; p++) sA += a[o + p * pStep];
      if (weighting === 'grad-act-ratio') {
        let sGA = 0;
        for (let p = 0; p < hw; p++) sGA += g[o + p * pStep] * a[o + p * pStep];
        out[b * k + ch] = sGA / (sA + eps);
        continue;
      }
      let num = 0;
      let den = 0;
      for (let p = 0; p < hw; p++) {
        const gv = g[o + p * pStep];
        if (gv === 0) continue;
        const g2 = gv * gv;
        const g3 = g2 * gv;
        const ap = g2 / (2 * g2 + sA * g3 + eps);
        num += (gv < 0 ? 0 : gv) * ap;
        den += ap;
      }
      out[b * k + ch] = weighting === 'grad-pp-normalized' && den !== 0 ? num / den : num;
    }
  }
}

/**
 * The generalized CAM tail over R rounds, per round r and image:
 *   lowresRaw = the map of `combine`; lowres = minMaxNormalize(relu(lowresRaw));
 *   map = minMaxNormalize(resize(lowres)); guided = guidedProduct(inputGrads[r], map).
 * The normalize and resize steps see the R*n maps of all rounds as one batch (the same numbers
 * as R separate calls: every step is per image).
 */
function camTail(
  a: Float32Array,
  grads: Float32Array[] | null,
  shape: FeatureShape,
  combine: CamCombine,
  options: CamTailOptions,
  guide?: CamGuide,
): CamTailResult {
  const { n, k, h, w } = shape;
  const hw = h * w;
  const nk = n * k;
  const nhw = n * hw;
  const rounds =
    combine.kind === 'given-weights' ? combine.weights.length : combine.kind === 'given-lowres' ? combine.lowres.length : grads!.length;
  const relu = options.relu !== false;
  const hasWeights = combine.kind === 'weights' || combine.kind === 'given-weights';
  const weights = hasWeights ? new Float32Array(rounds * nk) : undefined;
  const lowresRaw = new Float32Array(rounds * nhw);
  for (let r = 0; r < rounds; r++) {
    const raw = lowresRaw.subarray(r * nhw, (r + 1) * nhw);
    const wr = weights?.subarray(r * nk, (r + 1) * nk);
    switch (combine.kind) {
      case 'weights':
        channelWeights(grads![r], a, shape, combine.weighting, combine.eps ?? DEFAULT_CAM_EPS, wr!);
        channelSum(a, shape, wr!, null, 'grad-times-act', false, raw);
        break;
      case 'given-weights':
        wr!.set(combine.weights[r]);
        channelSum(a, shape, wr!, null, 'grad-times-act', false, raw);
        break;
      case 'elementwise':
        channelSum(a, shape, null, grads![r], combine.op, false, raw);
        break;
      case 'given-lowres':
        raw.set(combine.lowres[r]);
        break;
    }
  }
  const maps = rounds * n;
  const lowres = new Float32Array(lowresRaw.length);
  for (let p = 0; p < lowres.length; p++) lowres[p] = relu && lowresRaw[p] < 0 ? 0 : lowresRaw[p];
  for (let b = 0; b < maps; b++) normalizeImage(lowres, lowres, b * hw, hw);
  const { outH, outW } = options;
  const map = resizeBilinear(lowres, maps, h, w, outH, outW, { alignCorners: options.alignCorners === true });
  const size = outH * outW;
  for (let b = 0; b < maps; b++) normalizeImage(map, map, b * size, size);
  const result: CamTailResult = { rounds, lowresRaw, lowres, map };
  if (weights) result.weights = weights;
  if (guide) {
    const len = n * guide.c * size;
    const guided = new Float32Array(rounds * len);
    for (let r = 0; r < rounds; r++) {
      guidedProduct(guide.inputGrads[r], map.subarray(r * n * size, (r + 1) * n * size), n, guide.c, outH, outW, guide.layout, guided.subarray(r * len, (r + 1) * len));
    }
    result.guided = guided;
  }
  return result;
}

/**
 * pytorch-grad-cam's Grad-CAM, per image: camTail with one round of 'grad-mean' weights:
 *   weights = channelMean(g); lowresRaw = sum_k weights_k A_k;
 *   lowres = minMaxNormalize(relu(lowresRaw)); map = minMaxNormalize(resize(lowres)).
 */
function gradcamTail(a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions): GradcamTailResult {
  const t = camTail(a, [g], shape, { kind: 'weights', weighting: 'grad-mean' }, options);
  return { weights: t.weights!, lowresRaw: t.lowresRaw, lowres: t.lowres, map: t.map };
}

export const reference: KernelsSync = {
  channelMean,
  channelSums,
  weightedChannelSum,
  elementwiseChannelSum,
  resizeBilinear,
  minMaxNormalize,
  guidedProduct,
  gradcamTail,
  ...pictureReference,
  camTail,
};
