/**
 * PNG encoding of raw interleaved bytes with sharp, and the three pictures of an explanation.
 * sharp encodes on libuv's thread pool, so the n PNGs of a batch (encodePngs) are made in parallel
 * off the main thread, as many at once as UV_THREADPOOL_SIZE allows (default 4).
 */
import { sharp } from './sharp';
import { checkPositiveInteger, invalidRange, invalidType } from '../errors';
import { getKernels } from '../kernels';
import { pictureReference } from '../kernels/pictures';
import type { DeviceRequest } from '../kernels/types';
import type { Layout } from '../types';
import { applyColormap, ColormapName } from './colormap';
import { deprocessImage } from './deprocess';
import { OverlayOptions, resolveImageWeight, rgbToRgba, showCamOnImage } from './overlay';

/**
 * The zlib level of the PNGs made here, chosen for throughput. Measured on 32 demo-like overlays
 * (224x224 RGB: the photos of assets/ blended with jet CAMs; raw 147 KiB each), sharp 0.34, CPU time
 * per image of a serial encode (process.cpuUsage, 5 repetitions; 2 busy cores, 2026-12-02;
 * `npm run bench:pictures -- --png-levels` gives the same table in wall time):
 *
 *   level                  0     1     2     3     4     5     6     7     8     9
 *   no filter    KiB   147.5 139.5 127.7 126.9 126.8 126.8 126.8 126.7 126.7 125.5
 *                ms     1.42  2.94  4.12  4.16  4.12  5.68  5.55  4.39  4.17  5.24
 *   adaptive     KiB   147.5 107.9  73.8  72.6  72.1  71.9  71.7  67.7  67.7  67.6
 *                ms     5.52  6.80  7.79  7.13  6.85  9.48 10.05 10.21 11.08 23.24
 *
 * Without PNG's row filters these noisy photo-like pictures barely compress: levels 2-9 all land
 * within 2% of each other, and level 1 costs half the time of level 6 (the former default) for 10%
 * more bytes. Level 1 is the default. Where size matters more than time, `adaptiveFiltering: true`
 * with level 2-4 makes files 43% smaller than level 6 for 1.3-1.4x its time.
 */
export const DEFAULT_PNG_COMPRESSION = 1;

export interface PngOptions {
  /** zlib compression level 0 (stored) .. 9; default DEFAULT_PNG_COMPRESSION (1) */
  compressionLevel?: number;
  /** PNG adaptive row filtering (libvips/libspng): smaller files for photos, about 2x the encode time; default false */
  adaptiveFiltering?: boolean;
}

interface PngSettings {
  level: number;
  adaptive: boolean;
}

function checkPngOptions(options: PngOptions): PngSettings {
  const level = options.compressionLevel ?? DEFAULT_PNG_COMPRESSION;
  if (typeof level !== 'number') throw invalidType('compressionLevel', 'integer between 0 and 9', level);
  if (!(Number.isInteger(level) && level >= 0 && level <= 9)) throw invalidRange('compressionLevel', 'integer between 0 and 9', level);
  const adaptive = options.adaptiveFiltering ?? false;
  if (typeof adaptive !== 'boolean') throw invalidType('adaptiveFiltering', 'boolean', adaptive);
  return { level, adaptive };
}

function checkChannels(channels: unknown): void {
  if (channels !== 1 && channels !== 3 && channels !== 4) throw invalidRange('channels', '1, 3 or 4', channels);
}

function encodeChecked(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, png: PngSettings): Promise<Buffer> {
  let img = sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels } });
  if (channels === 1) img = img.toColourspace('b-w');
  return img.png({ compressionLevel: png.level, adaptiveFiltering: png.adaptive }).toBuffer();
}

/** Encode interleaved bytes ([height*width*channels], channels 1 grey, 3 RGB, 4 RGBA) as a PNG. */
export async function encodePng(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 1 | 3 | 4 = 3,
  options: PngOptions = {},
): Promise<Buffer> {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  checkChannels(channels);
  if (!(pixels instanceof Uint8Array)) throw invalidType('pixels', 'Uint8Array', pixels);
  if (pixels.length !== width * height * channels) {
    throw invalidRange('pixels', `Uint8Array of length ${width * height * channels}`, pixels);
  }
  return encodeChecked(pixels, width, height, channels, checkPngOptions(options));
}

/**
 * Encode n pictures ([n,height,width,channels] interleaved bytes, one array) as n PNGs, all
 * started at once: sharp runs them in parallel on libuv's threads. The PNGs equal encodePng's.
 */
export async function encodePngs(
  pixels: Uint8Array,
  n: number,
  width: number,
  height: number,
  channels: 1 | 3 | 4 = 3,
  options: PngOptions = {},
): Promise<Buffer[]> {
  checkPositiveInteger('n', n);
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  checkChannels(channels);
  if (!(pixels instanceof Uint8Array)) throw invalidType('pixels', 'Uint8Array', pixels);
  const size = width * height * channels;
  if (pixels.length !== n * size) throw invalidRange('pixels', `Uint8Array of length ${n * size}`, pixels);
  const png = checkPngOptions(options);
  return Promise.all(Array.from({ length: n }, (_, b) => encodeChecked(pixels.subarray(b * size, (b + 1) * size), width, height, channels, png)));
}

/** RGB float picture in [0,1] [H*W*3] to bytes (np.uint8(255*x), truncation). */
export function rgbFloatToBytes(rgb: Float32Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) {
    const s = Math.fround(255 * rgb[i]);
    out[i] = s > 0 ? (s >= 255 ? 255 : Math.trunc(s)) : 0;
  }
  return out;
}

export type PixelFormat = 'png' | 'rgb' | 'rgba';

export interface RenderedPicture {
  width: number;
  height: number;
  /** PNG bytes (format 'png') or raw interleaved RGB/RGBA bytes */
  data: Buffer | Uint8Array;
}

async function finish(rgb: Uint8Array, width: number, height: number, format: PixelFormat, png: PngOptions = {}): Promise<RenderedPicture> {
  if (format === 'png') return { width, height, data: await encodePng(rgb, width, height, 3, png) };
  if (format === 'rgba') return { width, height, data: rgbToRgba(rgb) };
  if (format === 'rgb') return { width, height, data: rgb };
  throw invalidRange('format', "one of 'png', 'rgb', 'rgba'", format);
}

/** The colormapped map alone (heatmap), as a PNG or raw bytes. */
export async function renderHeatmap(
  map: Float32Array,
  width: number,
  height: number,
  options: { colormap?: ColormapName; format?: PixelFormat } & PngOptions = {},
): Promise<RenderedPicture> {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  if (!(map instanceof Float32Array) || map.length !== width * height) throw invalidRange('map', `Float32Array of length ${width * height}`, map);
  return finish(applyColormap(map, options.colormap ?? 'jet'), width, height, options.format ?? 'png', options);
}

/** show_cam_on_image(image, map) as a PNG or raw bytes. image: RGB float [H*W*3] in [0,1]. */
export async function renderOverlay(
  image: Float32Array,
  map: Float32Array,
  width: number,
  height: number,
  options: OverlayOptions & { format?: PixelFormat } & PngOptions = {},
): Promise<RenderedPicture> {
  return finish(showCamOnImage(image, map, width, height, options), width, height, options.format ?? 'png', options);
}

/**
 * renderOverlay for a batch: images float RGB [n,H,W,3] in [0,1], maps [n,H,W]. The blend runs
 * as one showCamOnImage kernel call on `device` (default 'auto': cuda > native cpu > js, off the
 * main thread), the PNGs are encoded in parallel (encodePngs). The pictures equal renderOverlay's
 * for each image ('rgb'/'rgba' bytes; PNGs of the same pixels at the same compression level).
 */
export async function renderOverlays(
  images: Float32Array,
  maps: Float32Array,
  n: number,
  width: number,
  height: number,
  options: OverlayOptions & { format?: PixelFormat; device?: DeviceRequest } & PngOptions = {},
): Promise<RenderedPicture[]> {
  const format = options.format ?? 'png';
  if (format !== 'png' && format !== 'rgb' && format !== 'rgba') throw invalidRange('format', "one of 'png', 'rgb', 'rgba'", format);
  const imageWeight = resolveImageWeight(options);
  const png = checkPngOptions(options);
  const channels = format === 'rgba' ? 4 : 3;
  const kernels = getKernels(options.device ?? 'auto');
  const bytes = await kernels.async.showCamOnImage(images, maps, n, height, width, { colormap: options.colormap ?? 'jet', imageWeight, channels });
  if (format === 'png') {
    const pngs = await encodePngs(bytes, n, width, height, 3, { compressionLevel: png.level, adaptiveFiltering: png.adaptive });
    return pngs.map((data) => ({ width, height, data }));
  }
  const size = width * height * channels;
  return Array.from({ length: n }, (_, b) => ({ width, height, data: bytes.subarray(b * size, (b + 1) * size) }));
}

/**
 * A guided output (guided backprop or Guided Grad-CAM) of one image, deprocessed as pytorch-grad-cam's
 * deprocess_image. data: [c,H,W] ('nchw') or [H,W,c] ('nhwc'). Grey (c=1) gives a grey PNG; c=3 RGB.
 */
export async function renderGuided(
  data: Float32Array,
  c: number,
  height: number,
  width: number,
  layout: Layout,
  options: { format?: PixelFormat } & PngOptions = {},
): Promise<RenderedPicture> {
  const bytes = deprocessImage(data, c, height, width, layout);
  let rgb: Uint8Array;
  if (c === 3) rgb = bytes;
  else if (c === 1) rgb = pictureReference.greyToRgb(bytes, 1, height, width);
  else throw invalidRange('c', '1 or 3 channels for a picture', c);
  return finish(rgb, width, height, options.format ?? 'png', options);
}

/** A [H*W] map in [0,1] as a grey picture (uint8(255·x), truncation), as a PNG or raw bytes. */
export async function renderGrey(map: Float32Array, width: number, height: number, options: { format?: PixelFormat } = {}): Promise<RenderedPicture> {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  if (!(map instanceof Float32Array) || map.length !== width * height) throw invalidRange('map', `Float32Array of length ${width * height}`, map);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < map.length; i++) {
    const s = Math.fround(255 * map[i]);
    rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = s > 0 ? (s >= 255 ? 255 : Math.trunc(s)) : 0;
  }
  return finish(rgb, width, height, options.format ?? 'png');
}
