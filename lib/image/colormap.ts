/**
 * Colormaps as 256-entry RGB lookup tables, built the way OpenCV builds COLORMAP_JET,
 * COLORMAP_TURBO and COLORMAP_VIRIDIS (imgproc/src/colormap.cpp), so that a heatmap made here
 * equals `cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET)` (converted to RGB) byte for byte,
 * as pytorch-grad-cam's show_cam_on_image uses it.
 *
 * OpenCV's construction, reproduced in float32 arithmetic (Math.fround at every step):
 *   X = linspace(0, 1, 256); LUT = interp1(X, base, linspace(0, 1, 256)); lut8 = cvRound(255 * LUT)
 * where cvRound rounds half to even. Jet's base map is Octave's jet(256):
 *   r = clamp(1.5 - |4t - 3|), g = clamp(1.5 - |4t - 2|), b = clamp(1.5 - |4t - 1|), t = i / 255.
 */
import { checkOneOf, invalidType } from '../errors';
import { pictureReference } from '../kernels/pictures';
import { TURBO_RGB, VIRIDIS_RGB } from './colormap-data';

export { toUint8Index } from '../kernels/pictures';

export type ColormapName = 'jet' | 'turbo' | 'viridis';
export const COLORMAPS: readonly ColormapName[] = ['jet', 'turbo', 'viridis'];

const f = Math.fround;

/** OpenCV's linspace(x0, x1, n) in float32. */
function linspace(x0: number, x1: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const step = f(f(x1 - x0) / (n - 1));
  for (let i = 0; i < n; i++) out[i] = f(x0 + f(i * step));
  return out;
}

/** OpenCV's interp1_<float>: binary search, then linear interpolation, all in float32. */
function interp1(x: Float32Array, y: Float32Array, xi: Float32Array): Float32Array {
  const out = new Float32Array(xi.length);
  for (let i = 0; i < xi.length; i++) {
    const v = xi[i];
    let low = 0;
    let high = x.length - 1;
    if (v < x[low]) high = 1;
    if (v > x[high]) low = high - 1;
    while (high - low > 1) {
      const c = low + ((high - low) >> 1);
      if (v > x[c]) low = c;
      else high = c;
    }
    const num = f(f(v - x[low]) * f(y[high] - y[low]));
    out[i] = f(y[low] + f(num / f(x[high] - x[low])));
  }
  return out;
}

/** cvRound: round half to even (lrint in the default rounding mode), saturated to uint8. */
function roundHalfEvenU8(v: number): number {
  let r = Math.round(v);
  if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1; // Math.round rounds .5 up; move to the even neighbour
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** OpenCV's ColorMap::linear_colormap for a 256-entry base map sampled at 256 points. */
function linearColormap(base: ArrayLike<number>): Uint8Array {
  const n = base.length / 3;
  const X = linspace(0, 1, n);
  const xi = linspace(0, 1, 256);
  const lut = new Uint8Array(256 * 3);
  for (let ch = 0; ch < 3; ch++) {
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = base[i * 3 + ch];
    const yi = interp1(X, y, xi);
    for (let i = 0; i < 256; i++) lut[i * 3 + ch] = roundHalfEvenU8(f(yi[i] * 255));
  }
  return lut;
}

function jetBase(): Float64Array {
  const clamp = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
  const base = new Float64Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t4 = (4 * i) / 255;
    base[i * 3] = clamp(1.5 - Math.abs(t4 - 3));
    base[i * 3 + 1] = clamp(1.5 - Math.abs(t4 - 2));
    base[i * 3 + 2] = clamp(1.5 - Math.abs(t4 - 1));
  }
  return base;
}

const cache = new Map<ColormapName, Uint8Array>();

/**
 * The 256-entry lookup table of a colormap: Uint8Array(768), RGB triples, entry i for uint8 value i.
 * The same object is returned on every call: do not modify it (copy with `.slice()`).
 */
export function colormapLut(name: ColormapName = 'jet'): Uint8Array {
  checkOneOf('colormap', name, COLORMAPS);
  let lut = cache.get(name);
  if (!lut) {
    lut = linearColormap(name === 'jet' ? jetBase() : name === 'turbo' ? TURBO_RGB : VIRIDIS_RGB);
    cache.set(name, lut);
  }
  return lut;
}

/**
 * Colormap a map with values in [0,1] (e.g. `Explanation.map`): returns interleaved RGB bytes,
 * Uint8Array(map.length * 3), the heatmap of pytorch-grad-cam's show_cam_on_image
 * (`cv2.applyColorMap(np.uint8(255 * mask), colormap)` in RGB order).
 */
export function applyColormap(map: ArrayLike<number>, colormap: ColormapName = 'jet'): Uint8Array {
  if (map == null || typeof (map as { length?: unknown }).length !== 'number') {
    throw invalidType('map', 'Float32Array or array of numbers', map);
  }
  colormapLut(colormap); // checks the name
  // the picture kernel's twin (lib/kernels/pictures.ts) as one 1 x length map; it reads map[i] only
  return pictureReference.applyColormap(map as Float32Array, 1, 1, map.length, colormap);
}
