/**
 * pytorch-grad-cam's deprocess_image (from keras-grad-cam), the way guided backpropagation and
 * Guided Grad-CAM are turned into pictures:
 *
 *   img = img - np.mean(img)
 *   img = img / (np.std(img) + 1e-5)
 *   img = img * 0.1
 *   img = img + 0.5
 *   img = np.clip(img, 0, 1)
 *   return np.uint8(img * 255)
 *
 * mean and std are over the whole image (H, W and channels). The arithmetic is numpy's on a float32
 * array: float32 element-wise operations and numpy's pairwise float32 summation, so the bytes equal
 * the Python library's (test/image.test.ts checks them against ../shared/reference). pytorch-grad-cam's
 * guided arrays are C,H,W in memory (a transposed view): pass them as 'nchw' to sum in the same order.
 */
import { checkFloat32Array, checkOneOf, checkPositiveInteger } from '../errors';
import type { Layout } from '../kernels/types';

const f = Math.fround;

/** numpy's pairwise summation (loops_utils.h: 8 accumulators, blocks of 128), in float32. */
function pairwiseSum(a: Float32Array, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f(res + a[start + i]);
    return res;
  }
  if (n <= 128) {
    const r = [a[start], a[start + 1], a[start + 2], a[start + 3], a[start + 4], a[start + 5], a[start + 6], a[start + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] = f(r[j] + a[start + i + j]);
    }
    let res = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i++) res = f(res + a[start + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f(pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2));
}

/**
 * np.sum of a float32 array in memory order: the reduction iterator hands the add loop blocks of
 * at most 8192 elements (numpy's buffer size), each summed pairwise, accumulated from 0.
 * This order reproduces pytorch-grad-cam's deprocessed reference images byte for byte.
 */
export function numpySumF32(a: Float32Array): number {
  let res = 0;
  for (let s = 0; s < a.length; s += 8192) res = f(res + pairwiseSum(a, s, Math.min(8192, a.length - s)));
  return res;
}

/** np.mean and np.std (ddof 0) of a contiguous float32 array, with numpy's float32 arithmetic. */
export function numpyMeanStdF32(a: Float32Array): { mean: number; std: number } {
  const n = a.length;
  const mean = f(numpySumF32(a) / n);
  const sq = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const d = f(a[i] - mean);
    sq[i] = f(d * d);
  }
  const std = f(Math.sqrt(f(numpySumF32(sq) / n)));
  return { mean, std };
}

/**
 * deprocess_image on one image. `data` is the guided output of ONE image in the given layout:
 * 'nhwc' = [H,W,c] (what pytorch-grad-cam passes: its guided output is transposed to H,W,C) or
 * 'nchw' = [c,H,W]. The statistics are taken over `data` in its own order.
 * Returns interleaved bytes [H*W*c] (HWC: ready for a PNG with c channels).
 */
export function deprocessImage(data: Float32Array, c: number, height: number, width: number, layout: Layout = 'nhwc'): Uint8Array {
  checkPositiveInteger('c', c);
  checkPositiveInteger('height', height);
  checkPositiveInteger('width', width);
  checkOneOf('layout', layout, ['nchw', 'nhwc'] as const);
  checkFloat32Array('data', data, c * height * width);
  const { mean, std } = numpyMeanStdF32(data);
  // np.std returns a float32 scalar; + 1e-5 (a Python float) promotes scalar-with-scalar to float64,
  // which numpy casts back to float32 when dividing the float32 array by it.
  const denom = f(std + 1e-5);
  const tenth = f(0.1);
  const out = new Uint8Array(data.length);
  const hw = height * width;
  for (let i = 0; i < data.length; i++) {
    let v = f(f(f(data[i] - mean) / denom) * tenth);
    v = f(v + 0.5);
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    const s = f(v * 255);
    // output index: HWC
    const o = layout === 'nhwc' ? i : (i % hw) * c + Math.floor(i / hw);
    out[o] = Math.trunc(s);
  }
  return out;
}
