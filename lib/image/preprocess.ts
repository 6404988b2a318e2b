/**
 * Pictures in, model input out: decode and resize with sharp, scale to [0,1], normalize with
 * mean/std per channel, lay out as nchw or nhwc, stack into a batch. Also keeps the resized
 * picture (RGB float in [0,1], [H,W,3]) for the overlays, the way pytorch-grad-cam's examples keep
 * `rgb_img` next to `input_tensor`.
 */
import sharp from 'sharp';
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
  const rgb = new Float32Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = data[i] / 255;
  const rotated = (meta.orientation ?? 1) >= 5;
  return {
    rgb,
    width,
    height,
    originalWidth: (rotated ? meta.height : meta.width) ?? width,
    originalHeight: (rotated ? meta.width : meta.height) ?? height,
  };
}

/**
 * Turn decoded pictures into one model-input batch: values pixel/255 (times 255/pixelScale), minus
 * mean, divided by std, per channel, in `layout`.
 */
export function toInputBatch(images: readonly DecodedImage[], spec: PreprocessSpec): InputBatch {
  const s = checkPreprocessSpec(spec);
  if (!Array.isArray(images) || images.length === 0) throw invalidType('images', 'non-empty array of decoded images', images);
  const { width: W, height: H, channels: c, layout } = s;
  const hw = W * H;
  // one Float32Array holds the batch: at most 2^31-1 values (as checkInputBatch accepts)
  if (images.length * c * hw > 2 ** 31 - 1) {
    throw invalidRange('images', `at most ${Math.floor((2 ** 31 - 1) / (c * hw))} pictures of ${W}x${H}x${c} in one batch`, images);
  }
  const data = new Float32Array(images.length * c * hw);
  const k = 255 / s.pixelScale;
  images.forEach((img, n) => {
    if (img.width !== W || img.height !== H) {
      throw invalidRange(`images[${n}]`, `a ${W}x${H} picture`, `${img.width}x${img.height}`);
    }
    const base = n * c * hw;
    for (let p = 0; p < hw; p++) {
      const r = img.rgb[p * 3] * k;
      const g = img.rgb[p * 3 + 1] * k;
      const b = img.rgb[p * 3 + 2] * k;
      const values = c === 1 ? [0.2989 * r + 0.587 * g + 0.114 * b] : [r, g, b];
      for (let ch = 0; ch < c; ch++) {
        const v = (values[ch] - s.mean[ch]) / s.std[ch];
        data[layout === 'nchw' ? base + ch * hw + p : base + p * c + ch] = v;
      }
    }
  });
  const shape: [number, number, number, number] = layout === 'nchw' ? [images.length, c, H, W] : [images.length, H, W, c];
  return { data, shape, layout };
}

/** decodeImage for every source, then toInputBatch. */
export async function preprocessImages(
  sources: ReadonlyArray<string | Uint8Array>,
  spec: PreprocessSpec,
): Promise<{ batch: InputBatch; images: DecodedImage[] }> {
  const s = checkPreprocessSpec(spec);
  const images = await Promise.all(sources.map((src) => decodeImage(src, s.width, s.height)));
  return { batch: toInputBatch(images, s), images };
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
