/**
 * Argument checks for every kernel of lib/kernels/types.ts, run in TypeScript before any
 * implementation (cuda, cpu, js) sees the arguments. The native addon repeats the same checks
 * with the same messages (native/check.h), since it can be called directly.
 *
 * Message shape (lib/errors.ts): `Expected ${expected} for ${name} but received ${describe(value)}`.
 * Names are the parameter names of types.ts; fields are dotted (`shape.n`, `options.outH`).
 * Order of checks for one call: sizes and shapes first (in parameter order; a shape's fields in
 * the order n, k, h, w, layout), then the element counts (at most 2^31 - 1 per array), then the
 * arrays in parameter order (type, then length), then the remaining options. The messages:
 *
 *   not a Float32Array  TypeError  Expected Float32Array for g but received Float64Array(24)
 *   wrong length        RangeError Expected Float32Array of length 24 for g but received Float32Array(10)
 *   size not a number   TypeError  Expected positive integer for shape.k but received '3' of type string
 *   size NaN/0/-1/1.5   RangeError Expected positive integer for shape.k but received 1.5 of type number
 *   shape not object    TypeError  Expected object for shape but received undefined
 *   unknown layout      RangeError Expected one of 'nchw', 'nhwc' for shape.layout but received 'NCHW' of type string
 *   layout not string   TypeError  Expected one of 'nchw', 'nhwc' for layout but received 1 of type number
 *   unknown op          RangeError Expected one of 'grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act' for op but received ...
 *   not a boolean       TypeError  Expected boolean for relu but received 1 of type number
 *   too many elements   RangeError Expected at most 2147483647 elements for a but received 4294967296 of type number
 *                      (named after the array that would hold them: x, g, a, guided; out for
 *                      resizeBilinear's output, map for gradcamTail's; lowres, map, guided for camTail's)
 * camTail's per-round arrays (grads, combine.weights, combine.lowres, guide.inputGrads):
 *   not an array        TypeError  Expected array of Float32Array for grads but received null
 *   empty               RangeError Expected non-empty array of Float32Array for grads but received []
 *   other round count   RangeError Expected array of length 2 (one per round) for guide.inputGrads but received array of length 1
 *   an entry            TypeError / RangeError as above, named grads[1], combine.lowres[0] ...
 *   grads not read      TypeError  Expected null (combine.kind 'given-weights' reads no gradients) for grads but received ...
 *   eps                 RangeError Expected finite number >= 0 for combine.eps but received -1 of type number
 */

import { checkBoolean, checkFloat32Array, checkOneOf, checkPositiveInteger, invalidRange, invalidType } from '../errors';
import { COLORMAPS } from '../image/colormap';
import type {
  ColormapName,
  CamCombine,
  CamGuide,
  CamTailOptions,
  ChannelWeighting,
  ElementwiseOp,
  FeatureShape,
  GradcamTailOptions,
  KernelsSync,
  Layout,
  PictureKernelsSync,
  ResizeOptions,
  ShowCamOnImageOptions,
} from './types';

/** Largest element count of one array (the native kernels index with int32). */
export const MAX_ELEMENTS = 2147483647;

export const LAYOUTS: readonly Layout[] = ['nchw', 'nhwc'];
export const ELEMENTWISE_OPS: readonly ElementwiseOp[] = ['grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act'];
export const CAM_COMBINE_KINDS: readonly CamCombine['kind'][] = ['weights', 'given-weights', 'elementwise', 'given-lowres'];
export const CHANNEL_WEIGHTINGS: readonly ChannelWeighting[] = ['grad-mean', 'grad-pp', 'grad-pp-normalized', 'grad-act-ratio'];

function checkObject(name: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw invalidType(name, 'object', v);
  }
  return v as Record<string, unknown>;
}

/** The product of sizes, which must not exceed MAX_ELEMENTS; `name` is the array that holds them. */
function checkCount(name: string, ...sizes: number[]): number {
  let count = 1;
  for (const s of sizes) count *= s;
  if (count > MAX_ELEMENTS) throw invalidRange(name, `at most ${MAX_ELEMENTS} elements`, count);
  return count;
}

/** shape: n, k, h, w positive integers, a known layout, n*k*h*w elements at most 2^31 - 1. */
export function checkFeatureShape(v: unknown, arrayName: string, name = 'shape'): FeatureShape {
  const o = checkObject(name, v);
  const n = checkPositiveInteger(`${name}.n`, o.n);
  const k = checkPositiveInteger(`${name}.k`, o.k);
  const h = checkPositiveInteger(`${name}.h`, o.h);
  const w = checkPositiveInteger(`${name}.w`, o.w);
  const layout = checkOneOf(`${name}.layout`, o.layout, LAYOUTS);
  checkCount(arrayName, n, k, h, w);
  return { n, k, h, w, layout };
}

function checkOptionalBoolean(name: string, v: unknown): void {
  if (v !== undefined) checkBoolean(name, v);
}

/** An optional output array: a Float32Array of exactly `length` elements sharing no memory with the inputs. */
function checkOut(out: unknown, length: number, inputs: Record<string, Float32Array>): void {
  if (out === undefined) return;
  checkFloat32Array('out', out, length);
  const o = out as Float32Array;
  for (const [name, a] of Object.entries(inputs)) {
    if (o.buffer === a.buffer && o.byteOffset < a.byteOffset + a.byteLength && a.byteOffset < o.byteOffset + o.byteLength) {
      throw invalidRange('out', `Float32Array not overlapping ${name}`, out);
    }
  }
}

/** A non-empty array (of per-round Float32Arrays; their type and length are checked later). */
function checkRoundArray(name: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) throw invalidType(name, 'array of Float32Array', v);
  if (v.length === 0) throw invalidRange(name, 'non-empty array of Float32Array', v);
  return v;
}

/** An array with one entry per round. */
function checkRoundCount(name: string, v: unknown[], rounds: number): void {
  if (v.length !== rounds) throw invalidRange(name, `array of length ${rounds} (one per round)`, v);
}

function checkRoundArrays(name: string, v: unknown[], length: number): void {
  v.forEach((x, r) => checkFloat32Array(`${name}[${r}]`, x, length));
}

function checkResizeOptions(name: string, v: unknown): void {
  if (v === undefined) return;
  const o = checkObject(name, v);
  checkOptionalBoolean(`${name}.alignCorners`, o.alignCorners);
}

function checkUint8Array(name: string, v: unknown, length: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalidType(name, 'Uint8Array', v);
  if (v.length !== length) throw invalidRange(name, `Uint8Array of length ${length}`, v);
  return v;
}

/** n, H, W of a picture batch, and its largest array ([n,H,W,ch]) within MAX_ELEMENTS. */
function checkPictureSize(n: number, H: number, W: number, arrayName: string, channels: number): void {
  checkPositiveInteger('n', n);
  checkPositiveInteger('H', H);
  checkPositiveInteger('W', W);
  checkCount(arrayName, n, H, W, channels);
}

/**
 * The picture kernels' checks (same order: sizes, counts, arrays, options, then values).
 *   Expected Uint8Array for grey but received Float32Array(4)
 *   Expected one of 'jet', 'turbo', 'viridis' for colormap but received 'hot' of type string
 *   Expected number between 0 and 1 for options.imageWeight but received 2 of type number
 *   Expected 3 or 4 for options.channels but received 2 of type number
 *   Expected float RGB values in [0, 1] for images but received Float32Array(12)   (some value > 1)
 */
const validatePictures: { [K in keyof PictureKernelsSync]: (...args: Parameters<PictureKernelsSync[K]>) => void } = {
  applyColormap(maps: Float32Array, n: number, H: number, W: number, colormap: ColormapName): void {
    checkPictureSize(n, H, W, 'out', 3);
    checkFloat32Array('maps', maps, n * H * W);
    checkOneOf('colormap', colormap, COLORMAPS);
  },

  showCamOnImage(images: Float32Array, maps: Float32Array, n: number, H: number, W: number, options?: ShowCamOnImageOptions): void {
    checkPictureSize(n, H, W, 'out', 4); // the output holds up to 4 channels
    checkFloat32Array('images', images, n * H * W * 3);
    checkFloat32Array('maps', maps, n * H * W);
    if (options !== undefined) {
      const o = checkObject('options', options);
      if (o.colormap !== undefined) checkOneOf('options.colormap', o.colormap, COLORMAPS);
      const w = o.imageWeight;
      if (w !== undefined) {
        if (typeof w !== 'number') throw invalidType('options.imageWeight', 'number between 0 and 1', w);
        if (!(w >= 0 && w <= 1)) throw invalidRange('options.imageWeight', 'number between 0 and 1', w);
      }
      const c = o.channels;
      if (c !== undefined) {
        if (typeof c !== 'number') throw invalidType('options.channels', '3 or 4', c);
        if (c !== 3 && c !== 4) throw invalidRange('options.channels', '3 or 4', c);
      }
    }
    // show_cam_on_image raises on an image above 1 (the check of pytorch-grad-cam; NaN passes, as np.max > 1 does)
    for (let i = 0; i < images.length; i++) {
      if (images[i] > 1) throw invalidRange('images', 'float RGB values in [0, 1]', images);
    }
  },

  deprocessImage(data: Float32Array, n: number, c: number, H: number, W: number, layout: Layout): void {
    checkPositiveInteger('n', n);
    checkPositiveInteger('c', c);
    checkPositiveInteger('H', H);
    checkPositiveInteger('W', W);
    checkOneOf('layout', layout, LAYOUTS);
    checkFloat32Array('data', data, checkCount('data', n, c, H, W));
  },

  greyToRgb(grey: Uint8Array, n: number, H: number, W: number): void {
    checkPictureSize(n, H, W, 'out', 3);
    checkUint8Array('grey', grey, n * H * W);
  },
};

/** One checker per kernel, with the kernel's own parameter list. */
export const validate: { [K in keyof KernelsSync]: (...args: Parameters<KernelsSync[K]>) => void } = {
  channelMean(x: Float32Array, shape: FeatureShape): void {
    const { n, k, h, w } = checkFeatureShape(shape, 'x');
    checkFloat32Array('x', x, n * k * h * w);
  },

  channelSums(g: Float32Array, a: Float32Array, shape: FeatureShape): void {
    const { n, k, h, w } = checkFeatureShape(shape, 'g');
    const len = n * k * h * w;
    checkFloat32Array('g', g, len);
    checkFloat32Array('a', a, len);
  },

  weightedChannelSum(weights: Float32Array, a: Float32Array, shape: FeatureShape, relu: boolean): void {
    const { n, k, h, w } = checkFeatureShape(shape, 'a');
    checkFloat32Array('weights', weights, n * k);
    checkFloat32Array('a', a, n * k * h * w);
    checkBoolean('relu', relu);
  },

  elementwiseChannelSum(g: Float32Array, a: Float32Array, shape: FeatureShape, op: ElementwiseOp, relu: boolean): void {
    const { n, k, h, w } = checkFeatureShape(shape, 'g');
    const len = n * k * h * w;
    checkFloat32Array('g', g, len);
    checkFloat32Array('a', a, len);
    checkOneOf('op', op, ELEMENTWISE_OPS);
    checkBoolean('relu', relu);
  },

  resizeBilinear(x: Float32Array, n: number, h: number, w: number, outH: number, outW: number, options?: ResizeOptions, out?: Float32Array): void {
    checkPositiveInteger('n', n);
    checkPositiveInteger('h', h);
    checkPositiveInteger('w', w);
    checkPositiveInteger('outH', outH);
    checkPositiveInteger('outW', outW);
    const len = checkCount('x', n, h, w);
    const outLen = checkCount('out', n, outH, outW);
    checkFloat32Array('x', x, len);
    checkResizeOptions('options', options);
    checkOut(out, outLen, { x });
  },

  minMaxNormalize(x: Float32Array, n: number, size: number): void {
    checkPositiveInteger('n', n);
    checkPositiveInteger('size', size);
    const len = checkCount('x', n, size);
    checkFloat32Array('x', x, len);
  },

  guidedProduct(guided: Float32Array, cam: Float32Array, n: number, c: number, H: number, W: number, layout: Layout, out?: Float32Array): void {
    checkPositiveInteger('n', n);
    checkPositiveInteger('c', c);
    checkPositiveInteger('H', H);
    checkPositiveInteger('W', W);
    checkOneOf('layout', layout, LAYOUTS);
    const len = checkCount('guided', n, c, H, W);
    checkFloat32Array('guided', guided, len);
    checkFloat32Array('cam', cam, n * H * W);
    checkOut(out, len, { guided, cam });
  },

  gradcamTail(a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions): void {
    const { n, k, h, w } = checkFeatureShape(shape, 'a');
    const o = checkObject('options', options);
    const outH = checkPositiveInteger('options.outH', o.outH);
    const outW = checkPositiveInteger('options.outW', o.outW);
    checkCount('map', n, outH, outW);
    const len = n * k * h * w;
    checkFloat32Array('a', a, len);
    checkFloat32Array('g', g, len);
    checkOptionalBoolean('options.relu', o.relu);
    checkOptionalBoolean('options.alignCorners', o.alignCorners);
  },

  ...validatePictures,
  camTail(
    a: Float32Array,
    grads: Float32Array[] | null,
    shape: FeatureShape,
    combine: CamCombine,
    options: CamTailOptions,
    guide?: CamGuide,
  ): void {
    // the order (native/check.h repeats it): shape; combine (kind, then its fields);
    // options.outH/outW; guide (c, layout, inputGrads is an array); grads (array or null by kind);
    // round counts; element counts; every Float32Array; options.relu/alignCorners.
    const { n, k, h, w } = checkFeatureShape(shape, 'a');
    const c = checkObject('combine', combine);
    const kind = checkOneOf('combine.kind', c.kind, CAM_COMBINE_KINDS);
    let given: unknown[] | undefined;
    if (kind === 'weights') {
      checkOneOf('combine.weighting', c.weighting, CHANNEL_WEIGHTINGS);
      if (c.eps !== undefined) {
        if (typeof c.eps !== 'number') throw invalidType('combine.eps', 'finite number >= 0', c.eps);
        if (!Number.isFinite(c.eps) || c.eps < 0) throw invalidRange('combine.eps', 'finite number >= 0', c.eps);
      }
    } else if (kind === 'elementwise') {
      checkOneOf('combine.op', c.op, ELEMENTWISE_OPS);
    } else if (kind === 'given-weights') {
      given = checkRoundArray('combine.weights', c.weights);
    } else {
      given = checkRoundArray('combine.lowres', c.lowres);
    }
    const o = checkObject('options', options);
    const outH = checkPositiveInteger('options.outH', o.outH);
    const outW = checkPositiveInteger('options.outW', o.outW);
    let guideC = 0;
    let inputGrads: unknown[] | undefined;
    if (guide !== undefined) {
      const gd = checkObject('guide', guide);
      guideC = checkPositiveInteger('guide.c', gd.c);
      checkOneOf('guide.layout', gd.layout, LAYOUTS);
      if (!Array.isArray(gd.inputGrads)) throw invalidType('guide.inputGrads', 'array of Float32Array', gd.inputGrads);
      inputGrads = gd.inputGrads;
    }
    let gradList: unknown[] | undefined;
    if (given) {
      if (grads !== null) throw invalidType('grads', `null (combine.kind '${kind}' reads no gradients)`, grads);
    } else {
      gradList = checkRoundArray('grads', grads);
    }
    const rounds = (given ?? gradList)!.length;
    if (inputGrads) checkRoundCount('guide.inputGrads', inputGrads, rounds);
    checkCount('lowres', rounds, n, h, w);
    checkCount('map', rounds, n, outH, outW);
    if (inputGrads) checkCount('guided', rounds, n, guideC, outH, outW);
    checkFloat32Array('a', a, n * k * h * w);
    if (gradList) checkRoundArrays('grads', gradList, n * k * h * w);
    if (kind === 'given-weights') checkRoundArrays('combine.weights', given!, n * k);
    if (kind === 'given-lowres') checkRoundArrays('combine.lowres', given!, n * h * w);
    if (inputGrads) checkRoundArrays('guide.inputGrads', inputGrads, n * guideC * outH * outW);
    checkOptionalBoolean('options.relu', o.relu);
    checkOptionalBoolean('options.alignCorners', o.alignCorners);
  },
};

/** The names of the kernels, in the order of types.ts. */
export const KERNEL_NAMES = Object.keys(validate) as (keyof KernelsSync)[];
