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
  ChannelSums,
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

/**
 * cam[b,p] = sum_k f[b,k,p], then ReLU when `relu`: f = weights[b,k] * A (weightedChannelSum)
 * when `weights` is given, else f = g*A or max(g,0)*A (elementwiseChannelSum).
 */
function channelSum(
  a: Float32Array,
  shape: FeatureShape,
  weights: Float32Array | null,
  g: Float32Array | null,
  reluGrad: boolean,
  relu: boolean,
): Float32Array {
  const { n, k, h, w } = shape;
  const hw = h * w;
  const out = new Float32Array(n * hw);
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
          for (let p = 0; p < hw; p++) {
            const gv = g![o + p];
            acc[p] += (reluGrad && gv < 0 ? 0 : gv) * a[o + p];
          }
        }
      }
    } else {
      for (let p = 0; p < hw; p++) {
        const o = base + p * k;
        let s = 0;
        if (weights) {
          for (let ch = 0; ch < k; ch++) s += weights[b * k + ch] * a[o + ch];
        } else {
          for (let ch = 0; ch < k; ch++) {
            const gv = g![o + ch];
            s += (reluGrad && gv < 0 ? 0 : gv) * a[o + ch];
          }
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
  return channelSum(a, shape, weights, null, false, relu);
}

function elementwiseChannelSum(
  g: Float32Array,
  a: Float32Array,
  shape: FeatureShape,
  op: ElementwiseOp,
  relu: boolean,
): Float32Array {
  return channelSum(a, shape, null, g, op === 'relu-grad-times-act', relu);
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

/**
 * pytorch-grad-cam's Grad-CAM, per image:
 *   weights = channelMean(g); lowresRaw = sum_k weights_k A_k;
 *   lowres = minMaxNormalize(relu(lowresRaw)); map = minMaxNormalize(resize(lowres)).
 */
function gradcamTail(a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions): GradcamTailResult {
  const { n, h, w } = shape;
  const relu = options.relu !== false;
  const weights = channelMean(g, shape);
  const lowresRaw = weightedChannelSum(weights, a, shape, false);
  const lowres = new Float32Array(lowresRaw.length);
  for (let p = 0; p < lowres.length; p++) lowres[p] = relu && lowresRaw[p] < 0 ? 0 : lowresRaw[p];
  for (let b = 0; b < n; b++) normalizeImage(lowres, lowres, b * h * w, h * w);
  const map = resizeBilinear(lowres, n, h, w, options.outH, options.outW, { alignCorners: options.alignCorners === true });
  const size = options.outH * options.outW;
  for (let b = 0; b < n; b++) normalizeImage(map, map, b * size, size);
  return { weights, lowresRaw, lowres, map };
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
};
