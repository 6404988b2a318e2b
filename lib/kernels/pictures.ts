/**
 * The pure-TypeScript twins of the picture kernels: the readable definition of what
 * native/colormap.{cc,cu} and native/deprocess.{cc,cu} compute, the 'js' device's picture
 * kernels, and what lib/image (applyColormap, showCamOnImage, deprocessImage, renderGuided)
 * runs for one picture. Batched: n maps or images per call, outputs interleaved [n,H,W,ch] bytes.
 *
 * Like lib/kernels/reference.ts these do NOT validate their arguments (validate.ts does).
 *
 * Numerics: numpy's float32 arithmetic, as pytorch-grad-cam runs it. Every element-wise step
 * is one float32 operation (Math.fround of the float64 result equals the float32 operation for
 * one +, -, *, / of float32 values), so the C++ (`float`, no FMA) and CUDA (--fmad=false) kernels
 * produce the same bytes:
 *  - colormap index: np.uint8(255 * v): s = f(255 * v); NaN and s <= 0 -> 0, s >= 255 -> 255,
 *    else trunc(s); the colour is OpenCV's 256-entry table (lib/image/colormap.ts).
 *  - show_cam_on_image: h = f(lut / 255); cam = f(f(wh * h) + f(wi * img)) with wh = f(1 - w),
 *    wi = f(w); cam / max(cam) over the whole image, then np.uint8(255 * .).
 *  - deprocess_image: mean and std with numpy's float32 pairwise summation (numpySumF32);
 *    d = f(std + 1e-5); v = f(f(f(x - mean) / d) * f(0.1)); v = clip(f(v + 0.5), 0, 1);
 *    byte = trunc(f(v * 255)).
 */

import { colormapLut, type ColormapName } from '../image/colormap';
import type { Layout, ShowCamOnImageOptions } from './types';

const f = Math.fround;

/** np.uint8(255 * v) for v in [0,1]: truncation toward zero in float32, clamped to 0..255; NaN -> 0. */
export function toUint8Index(v: number): number {
  const s = f(255 * f(v));
  if (!(s > 0)) return 0;
  return s >= 255 ? 255 : Math.trunc(s);
}

/** [n,H,W,3] RGB bytes: the colormap's colour of np.uint8(255 * v) for every value of maps [n,H,W]. */
function applyColormap(maps: Float32Array, n: number, H: number, W: number, colormap: ColormapName): Uint8Array {
  const lut = colormapLut(colormap);
  const count = n * H * W;
  const out = new Uint8Array(count * 3);
  for (let i = 0; i < count; i++) {
    const j = toUint8Index(maps[i]) * 3;
    out[i * 3] = lut[j];
    out[i * 3 + 1] = lut[j + 1];
    out[i * 3 + 2] = lut[j + 2];
  }
  return out;
}

/**
 * show_cam_on_image(img, mask, use_rgb=True, colormap, image_weight) for n images:
 * images float RGB [n,H,W,3] in [0,1], maps [n,H,W] in [0,1]. Out [n,H,W,channels] (alpha 255).
 */
function showCamOnImage(
  images: Float32Array,
  maps: Float32Array,
  n: number,
  H: number,
  W: number,
  options: ShowCamOnImageOptions = {},
): Uint8Array {
  const lut = colormapLut(options.colormap ?? 'jet');
  const imageWeight = options.imageWeight ?? 0.5;
  const channels = options.channels ?? 3;
  // numpy casts the Python-float weights to float32 before the element-wise float32 products
  const wh = f(1 - imageWeight);
  const wi = f(imageWeight);
  const hw = H * W;
  const out = new Uint8Array(n * hw * channels);
  const cam = new Float32Array(hw * 3);
  for (let b = 0; b < n; b++) {
    const img = b * hw * 3;
    let max = -Infinity;
    for (let p = 0; p < hw; p++) {
      const j = toUint8Index(maps[b * hw + p]) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const h = f(lut[j + ch] / 255);
        const v = f(f(wh * h) + f(wi * images[img + p * 3 + ch]));
        cam[p * 3 + ch] = v;
        if (v > max) max = v;
      }
    }
    const o = b * hw * channels;
    for (let p = 0; p < hw; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const s = f(255 * f(cam[p * 3 + ch] / max));
        out[o + p * channels + ch] = s > 0 ? (s >= 255 ? 255 : Math.trunc(s)) : 0;
      }
      if (channels === 4) out[o + p * 4 + 3] = 255;
    }
  }
  return out;
}

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

/** numpy's buffer size: the reduction hands the add loop blocks of at most this many elements. */
export const NUMPY_BLOCK = 8192;

/**
 * np.sum of a float32 array (or `length` elements from `start`) in memory order: blocks of at
 * most 8192 elements (numpy's buffer size), each summed pairwise, accumulated from 0. This order
 * reproduces pytorch-grad-cam's deprocessed reference images byte for byte.
 */
export function numpySumF32(a: Float32Array, start = 0, length = a.length - start): number {
  let res = 0;
  for (let s = 0; s < length; s += NUMPY_BLOCK) res = f(res + pairwiseSum(a, start + s, Math.min(NUMPY_BLOCK, length - s)));
  return res;
}

/** np.mean and np.std (ddof 0) of a contiguous float32 array, with numpy's float32 arithmetic. */
export function numpyMeanStdF32(a: Float32Array, start = 0, length = a.length - start): { mean: number; std: number } {
  const mean = f(numpySumF32(a, start, length) / length);
  const sq = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const d = f(a[start + i] - mean);
    sq[i] = f(d * d);
  }
  const std = f(Math.sqrt(f(numpySumF32(sq) / length)));
  return { mean, std };
}

/**
 * deprocess_image per image of data ([n,c,H,W] 'nchw' or [n,H,W,c] 'nhwc'); the statistics of
 * each image are taken over its values in memory order. Out: interleaved [n,H,W,c] bytes.
 */
function deprocessImage(data: Float32Array, n: number, c: number, H: number, W: number, layout: Layout): Uint8Array {
  const hw = H * W;
  const size = c * hw;
  const out = new Uint8Array(n * size);
  const tenth = f(0.1);
  for (let b = 0; b < n; b++) {
    const base = b * size;
    const { mean, std } = numpyMeanStdF32(data, base, size);
    // np.std returns a float32 scalar; + 1e-5 (a Python float) promotes scalar-with-scalar to
    // float64, which numpy casts back to float32 when dividing the float32 array by it.
    const denom = f(std + 1e-5);
    for (let i = 0; i < size; i++) {
      let v = f(f(f(data[base + i] - mean) / denom) * tenth);
      v = f(v + 0.5);
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      const o = layout === 'nhwc' ? i : (i % hw) * c + Math.floor(i / hw); // output index: HWC
      out[base + o] = Math.trunc(f(v * 255));
    }
  }
  return out;
}

/** [n,H,W] grey bytes -> [n,H,W,3] RGB bytes (the grey value in every channel). */
function greyToRgb(grey: Uint8Array, n: number, H: number, W: number): Uint8Array {
  const count = n * H * W;
  const out = new Uint8Array(count * 3);
  for (let i = 0; i < count; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = grey[i];
  return out;
}

/** The picture kernels' twins, merged into `reference` (lib/kernels/reference.ts). */
export const pictureReference = { applyColormap, showCamOnImage, deprocessImage, greyToRgb };
