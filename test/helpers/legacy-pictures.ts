/**
 * The picture functions of lib/image exactly as they were before the picture kernels
 * (git 262312c: colormap.ts applyColormap, overlay.ts showCamOnImage, deprocess.ts deprocessImage,
 * png.ts renderGuided's grey expansion), argument checks removed: test/image.kernels.test.ts
 * checks that every device still makes these bytes.
 */
import { colormapLut, type ColormapName } from '../../lib/image/colormap';
import type { Layout } from '../../lib/kernels/types';

const f = Math.fround;

/** np.uint8(255 * v) for v in [0,1]: truncation toward zero in float32, clamped to 0..255; NaN -> 0. */
function toUint8Index(v: number): number {
  const s = f(255 * f(v));
  if (!(s > 0)) return 0;
  return s >= 255 ? 255 : Math.trunc(s);
}

export function legacyApplyColormap(map: ArrayLike<number>, colormap: ColormapName = 'jet'): Uint8Array {
  const lut = colormapLut(colormap);
  const out = new Uint8Array(map.length * 3);
  for (let i = 0; i < map.length; i++) {
    const j = toUint8Index(map[i]) * 3;
    out[i * 3] = lut[j];
    out[i * 3 + 1] = lut[j + 1];
    out[i * 3 + 2] = lut[j + 2];
  }
  return out;
}

export function legacyShowCamOnImage(image: Float32Array, map: Float32Array, imageWeight: number, colormap: ColormapName): Uint8Array {
  const heatmap = legacyApplyColormap(map, colormap);
  // numpy casts the Python-float weights to float32 before the element-wise float32 products
  const wh = f(1 - imageWeight);
  const wi = f(imageWeight);
  const cam = new Float32Array(image.length);
  let max = -Infinity;
  for (let i = 0; i < cam.length; i++) {
    const h = f(heatmap[i] / 255);
    const v = f(f(wh * h) + f(wi * image[i]));
    cam[i] = v;
    if (v > max) max = v;
  }
  const out = new Uint8Array(cam.length);
  for (let i = 0; i < cam.length; i++) {
    const s = f(255 * f(cam[i] / max));
    out[i] = s > 0 ? (s >= 255 ? 255 : Math.trunc(s)) : 0;
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

/**
 * np.sum of a float32 array in memory order: the reduction iterator hands the add loop blocks of
 * at most 8192 elements (numpy's buffer size), each summed pairwise, accumulated from 0.
 * This order reproduces pytorch-grad-cam's deprocessed reference images byte for byte.
 */
function numpySumF32(a: Float32Array): number {
  let res = 0;
  for (let s = 0; s < a.length; s += 8192) res = f(res + pairwiseSum(a, s, Math.min(8192, a.length - s)));
  return res;
}

/** np.mean and np.std (ddof 0) of a contiguous float32 array, with numpy's float32 arithmetic. */
function numpyMeanStdF32(a: Float32Array): { mean: number; std: number } {
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

export function legacyDeprocessImage(data: Float32Array, c: number, height: number, width: number, layout: Layout): Uint8Array {
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

export function legacyGreyToRgb(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = bytes[i];
  return rgb;
}
