/**
 * Pictures in, model input out: decode and resize with sharp, scale to [0,1], normalize with
 * mean/std per channel, lay out as nchw or nhwc, stack into a batch. Also keeps the resized
 * picture (RGB float in [0,1], [H,W,3]) for the overlays, the way pytorch-grad-cam's examples keep
 * `rgb_img` next to `input_tensor`.
 */
import { sharp } from './sharp';
import { checkOneOf, invalidRange, invalidType } from '../errors';
import type { InputBatch, Layout } from '../types';
import { checkImageSize } from './limits';

export { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE } from './limits';

export interface PreprocessSpec {
  /** model input size */
  width: number;
  height: number;
  /** per-channel mean, applied to values in [0,1]: x = (pixel/255 - mean) / std. Default 0 */
  mean?: readonly number[];
  /** per-channel std, default 1 */
  std?: readonly number[];
  /** default 'nchw' */
  layout?: Layout;
  /** 3 (RGB, default) or 1 (grey: 0.2989 R + 0.587 G + 0.114 B, ITU-R 601 luma) */
  channels?: 1 | 3;
  /**
   * Scale of the raw pixel values before mean/std: 255 (default, pixels in [0,1]) or 1 (pixels in 0..255,
   * e.g. Caffe-style models with mean 103.9,116.8,123.7).
   */
  pixelScale?: number;
}

export interface DecodedImage {
  /** resized RGB picture, float in [0,1], interleaved [height*width*3] (the `rgb_img` of show_cam_on_image) */
  rgb: Float32Array;
  width: number;
  height: number;
  /** size of the original picture */
  originalWidth: number;
  originalHeight: number;
  /**
   * the 8-bit RGB pixels `rgb` was made from (rgb = pixels / 255), where this library decoded the
   * picture (decodeImage, preprocessImages, explainStream); not updated when rgb is changed
   */
  pixels?: Uint8Array;
}

export function checkPreprocessSpec(spec: PreprocessSpec): Required<PreprocessSpec> {
  if (typeof spec !== 'object' || spec === null) throw invalidType('spec', 'object', spec);
  checkImageSize(spec.width, spec.height);
  const channels = spec.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw invalidRange('channels', '1 or 3', channels);
  const layout = checkOneOf('layout', spec.layout ?? 'nchw', ['nchw', 'nhwc'] as const);
  const vec = (name: string, v: readonly number[] | undefined, dflt: number): number[] => {
    if (v === undefined) return new Array(channels).fill(dflt);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw invalidType(name, `array of ${channels} finite numbers`, v);
    }
    if (v.length === 1) return new Array(channels).fill(v[0]);
    if (v.length !== channels) throw invalidRange(name, `array of ${channels} numbers (or 1)`, v);
    return [...v];
  };
  const mean = vec('mean', spec.mean, 0);
  const std = vec('std', spec.std, 1);
  if (std.some((s) => s === 0)) throw invalidRange('std', 'non-zero numbers', std);
  const pixelScale = spec.pixelScale ?? 255;
  if (typeof pixelScale !== 'number' || !(pixelScale > 0)) throw invalidRange('pixelScale', 'positive number', pixelScale);
  return { width: spec.width, height: spec.height, mean, std, layout, channels, pixelScale };
}

/**
 * Decode a picture (a path or encoded bytes, any format sharp reads) and resize it to width x height
 * (aspect ratio not kept, as cv2.resize). EXIF orientation is applied; alpha is dropped (flattened on black).
 */
export async function decodeImage(source: string | Uint8Array, width: number, height: number): Promise<DecodedImage> {
  const raw = await decodePixels(source, width, height);
  const rgb = new Float32Array(width * height * 3);
  pixelsToUnit(raw.pixels, rgb, 0);
  return { rgb, width, height, originalWidth: raw.originalWidth, originalHeight: raw.originalHeight, pixels: raw.pixels };
}

/** A decoded picture as sharp gives it: 8-bit RGB, interleaved [height*width*3]. */
export interface DecodedPixels {
  pixels: Uint8Array;
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
}

/** decodeImage without the float conversion: the resized picture's 8-bit RGB pixels. */
export async function decodePixels(source: string | Uint8Array, width: number, height: number): Promise<DecodedPixels> {
  checkImageSize(width, height);
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
    throw invalidType('source', 'file path or encoded image bytes', source);
  }
  const img = sharp(source, { failOn: 'error' }).rotate();
  const meta = await img.metadata();
  const { data, info } = await img
    .removeAlpha()
    .toColourspace('srgb')
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw invalidRange('source', 'an RGB or grey picture', source);
  const rotated = (meta.orientation ?? 1) >= 5;
  return {
    pixels: data,
    width,
    height,
    originalWidth: (rotated ? meta.height : meta.width) ?? width,
    originalHeight: (rotated ? meta.width : meta.height) ?? height,
  };
}

/** byte / 255 as float32, for every byte value: the value decodeImage stores */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/** 8-bit values to float32 value/255 into out[at...] (the same floats as v / 255 stored in a Float32Array). */
export function pixelsToUnit(pixels: Uint8Array, out: Float32Array, at: number): void {
  const lut = UNIT;
  const n = pixels.length;
  for (let i = 0; i < n; i++) out[at + i] = lut[pixels[i]];
}

/**
 * Several pictures' 8-bit pixels as float32 value/255, one after the other in ONE array (`into` when
 * it is large enough, else a new one): the views, one per picture, and the array.
 */
export function pixelsToUnitViews(pixels: readonly Uint8Array[], into?: Float32Array): { views: Float32Array[]; buffer: Float32Array } {
  const total = pixels.reduce((t, p) => t + p.length, 0);
  const buffer = into && into.length >= total ? into : new Float32Array(total);
  let at = 0;
  const views = pixels.map((p) => {
    pixelsToUnit(p, buffer, at);
    at += p.length;
    return buffer.subarray(at - p.length, at);
  });
  return { views, buffer };
}

/** Checks the images and the batch size of toInputBatch / pixelsToInputBatch; the batch's array. */
function batchArray(images: ReadonlyArray<{ width: number; height: number }>, s: Required<PreprocessSpec>, out?: Float32Array): Float32Array {
  if (!Array.isArray(images) || images.length === 0) throw invalidType('images', 'non-empty array of decoded images', images);
  const { width: W, height: H, channels: c } = s;
  const hw = W * H;
  // one Float32Array holds the batch: at most 2^31-1 values (as checkInputBatch accepts)
  if (images.length * c * hw > 2 ** 31 - 1) {
    throw invalidRange('images', `at most ${Math.floor((2 ** 31 - 1) / (c * hw))} pictures of ${W}x${H}x${c} in one batch`, images);
  }
  images.forEach((img, n) => {
    if (img.width !== W || img.height !== H) {
      throw invalidRange(`images[${n}]`, `a ${W}x${H} picture`, `${img.width}x${img.height}`);
    }
  });
  const length = images.length * c * hw;
  return out && out.length === length ? out : new Float32Array(length);
}

function batchShape(n: number, s: Required<PreprocessSpec>): [number, number, number, number] {
  return s.layout === 'nchw' ? [n, s.channels, s.height, s.width] : [n, s.height, s.width, s.channels];
}

/**
 * Turn decoded pictures into one model-input batch: values pixel/255 (times 255/pixelScale), minus
 * mean, divided by std, per channel, in `layout`.
 */
export function toInputBatch(images: readonly DecodedImage[], spec: PreprocessSpec): InputBatch {
  const s = checkPreprocessSpec(spec);
  const data = batchArray(images, s);
  const hw = s.width * s.height;
  const c = s.channels;
  const nchw = s.layout === 'nchw';
  const k = 255 / s.pixelScale;
  // the same double arithmetic as (rgb * k - mean) / std per value, stored as float32
  if (c === 3) {
    const [m0, m1, m2] = s.mean;
    const [s0, s1, s2] = s.std;
    // nchw: channel planes at base, base + hw, base + 2hw; nhwc: interleaved like rgb
    const step = nchw ? 1 : 3;
    const o1 = nchw ? hw : 1;
    const o2 = nchw ? 2 * hw : 2;
    for (let n = 0; n < images.length; n++) {
      const rgb = images[n].rgb;
      let o = n * 3 * hw;
      for (let p = 0, q = 0; p < hw; p++, q += 3, o += step) {
        data[o] = (rgb[q] * k - m0) / s0;
        data[o + o1] = (rgb[q + 1] * k - m1) / s1;
        data[o + o2] = (rgb[q + 2] * k - m2) / s2;
      }
    }
  } else {
    // grey: one channel, so nchw and nhwc lay it out the same way
    const m = s.mean[0];
    const sd = s.std[0];
    for (let n = 0; n < images.length; n++) {
      const rgb = images[n].rgb;
      let o = n * hw;
      for (let q = 0; q < 3 * hw; q += 3) {
        const r = rgb[q] * k;
        const g = rgb[q + 1] * k;
        const b = rgb[q + 2] * k;
        data[o++] = (0.2989 * r + 0.587 * g + 0.114 * b - m) / sd;
      }
    }
  }
  return { data, shape: batchShape(images.length, s), layout: s.layout };
}

/**
 * toInputBatch for 8-bit pictures (decodePixels): the same floats as toInputBatch of the
 * decodeImage pictures, from a table per channel (the value of each channel depends on its byte only).
 * Into `out` (every value written) when it has the batch's length.
 */
export function pixelsToInputBatch(images: readonly DecodedPixels[], spec: PreprocessSpec, out?: Float32Array): InputBatch {
  const s = checkPreprocessSpec(spec);
  const data = batchArray(images, s, out);
  const hw = s.width * s.height;
  const k = 255 / s.pixelScale;
  const unit = UNIT;
  if (s.channels === 3) {
    const t0 = new Float32Array(256);
    const t1 = new Float32Array(256);
    const t2 = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      t0[v] = (unit[v] * k - s.mean[0]) / s.std[0];
      t1[v] = (unit[v] * k - s.mean[1]) / s.std[1];
      t2[v] = (unit[v] * k - s.mean[2]) / s.std[2];
    }
    const nchw = s.layout === 'nchw';
    const step = nchw ? 1 : 3;
    const o1 = nchw ? hw : 1;
    const o2 = nchw ? 2 * hw : 2;
    for (let n = 0; n < images.length; n++) {
      const px = images[n].pixels;
      let o = n * 3 * hw;
      for (let q = 0; q < 3 * hw; q += 3, o += step) {
        data[o] = t0[px[q]];
        data[o + o1] = t1[px[q + 1]];
        data[o + o2] = t2[px[q + 2]];
      }
    }
  } else {
    const m = s.mean[0];
    const sd = s.std[0];
    for (let n = 0; n < images.length; n++) {
      const px = images[n].pixels;
      let o = n * hw;
      for (let q = 0; q < 3 * hw; q += 3) {
        const r = unit[px[q]] * k;
        const g = unit[px[q + 1]] * k;
        const b = unit[px[q + 2]] * k;
        data[o++] = (0.2989 * r + 0.587 * g + 0.114 * b - m) / sd;
      }
    }
  }
  return { data, shape: batchShape(images.length, s), layout: s.layout };
}

/**
 * The display pictures (DecodedImage) of 8-bit pictures. Their float RGB is made on first read of
 * any picture's `rgb`, for all of them in ONE array (picture i's rgb is a view of
 * [i*H*W*3, (i+1)*H*W*3)), so that a batch of them needs no copy to be one batch array; a consumer
 * that reads `pixels` instead allocates nothing.
 */
export function pixelsToImages(images: readonly DecodedPixels[]): DecodedImage[] {
  let views: Float32Array[] | undefined;
  const made = (): Float32Array[] => {
    if (views) return views;
    views = pixelsToUnitViews(images.map((img) => img.pixels)).views;
    return views;
  };
  return images.map((img, i): DecodedImage => {
    let own: Float32Array | undefined;
    return {
      get rgb(): Float32Array { return own ?? made()[i]; },
      set rgb(v: Float32Array) { own = v; },
      width: img.width,
      height: img.height,
      originalWidth: img.originalWidth,
      originalHeight: img.originalHeight,
      pixels: img.pixels,
    };
  });
}

/** decodeImage for every source, then toInputBatch. */
export async function preprocessImages(
  sources: ReadonlyArray<string | Uint8Array>,
  spec: PreprocessSpec,
): Promise<{ batch: InputBatch; images: DecodedImage[] }> {
  const s = checkPreprocessSpec(spec);
  const pixels = await Promise.all(sources.map((src) => decodePixels(src, s.width, s.height)));
  // the pictures' rgb are views of one array (pixelsToImages)
  return { batch: pixelsToInputBatch(pixels, s), images: pixelsToImages(pixels) };
}

/**
 * The inverse for display: a model-input image (one image of a batch, in `layout`) back to an RGB
 * picture in [0,1] [H*W*3]: x*std + mean (scaled by pixelScale/255), clipped; grey is repeated.
 * Without mean/std (both undefined) the image is min-max scaled instead.
 */
export function batchImageToRgb(
  batch: InputBatch,
  index: number,
  spec?: { mean?: readonly number[]; std?: readonly number[]; pixelScale?: number },
): Float32Array {
  const [n, d1, d2, d3] = batch.shape;
  if (!Number.isInteger(index) || index < 0 || index >= n) throw invalidRange('index', `integer in [0, ${n - 1}]`, index);
  const nchw = batch.layout === 'nchw';
  const [c, H, W] = nchw ? [d1, d2, d3] : [d3, d1, d2];
  const hw = H * W;
  const base = index * c * hw;
  const at = (ch: number, p: number) => batch.data[nchw ? base + ch * hw + p : base + p * c + ch];
  const out = new Float32Array(hw * 3);
  const known = spec && (spec.mean !== undefined || spec.std !== undefined);
  let lo = Infinity;
  let hi = -Infinity;
  if (!known) {
    for (let i = 0; i < c * hw; i++) {
      const v = batch.data[base + i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const scale = (spec?.pixelScale ?? 255) / 255;
  for (let p = 0; p < hw; p++) {
    for (let o = 0; o < 3; o++) {
      const ch = c >= 3 ? o : 0;
      let v: number;
      if (known) {
        const m = spec?.mean?.[Math.min(ch, (spec.mean?.length ?? 1) - 1)] ?? 0;
        const sd = spec?.std?.[Math.min(ch, (spec.std?.length ?? 1) - 1)] ?? 1;
        v = (at(ch, p) * sd + m) * scale;
      } else {
        v = hi > lo ? (at(ch, p) - lo) / (hi - lo) : 0;
      }
      out[p * 3 + o] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}
