/** PNG encoding of raw interleaved bytes with sharp, and the three pictures of an explanation. */
import sharp from 'sharp';
import { checkPositiveInteger, invalidRange, invalidType } from '../errors';
import type { Layout } from '../types';
import { applyColormap, ColormapName } from './colormap';
import { deprocessImage } from './deprocess';
import { OverlayOptions, rgbToRgba, showCamOnImage } from './overlay';

/** Encode interleaved bytes ([height*width*channels], channels 1 grey, 3 RGB, 4 RGBA) as a PNG. */
export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4 = 3): Promise<Buffer> {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw invalidRange('channels', '1, 3 or 4', channels);
  if (!(pixels instanceof Uint8Array)) throw invalidType('pixels', 'Uint8Array', pixels);
  if (pixels.length !== width * height * channels) {
    throw invalidRange('pixels', `Uint8Array of length ${width * height * channels}`, pixels);
  }
  let img = sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels } });
  if (channels === 1) img = img.toColourspace('b-w');
  return img.png({ compressionLevel: 6 }).toBuffer();
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

async function finish(rgb: Uint8Array, width: number, height: number, format: PixelFormat): Promise<RenderedPicture> {
  if (format === 'png') return { width, height, data: await encodePng(rgb, width, height, 3) };
  if (format === 'rgba') return { width, height, data: rgbToRgba(rgb) };
  if (format === 'rgb') return { width, height, data: rgb };
  throw invalidRange('format', "one of 'png', 'rgb', 'rgba'", format);
}

/** The colormapped map alone (heatmap), as a PNG or raw bytes. */
export async function renderHeatmap(map: Float32Array, width: number, height: number, options: { colormap?: ColormapName; format?: PixelFormat } = {}): Promise<RenderedPicture> {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  if (!(map instanceof Float32Array) || map.length !== width * height) throw invalidRange('map', `Float32Array of length ${width * height}`, map);
  return finish(applyColormap(map, options.colormap ?? 'jet'), width, height, options.format ?? 'png');
}

/** show_cam_on_image(image, map) as a PNG or raw bytes. image: RGB float [H*W*3] in [0,1]. */
export async function renderOverlay(
  image: Float32Array,
  map: Float32Array,
  width: number,
  height: number,
  options: OverlayOptions & { format?: PixelFormat } = {},
): Promise<RenderedPicture> {
  return finish(showCamOnImage(image, map, width, height, options), width, height, options.format ?? 'png');
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
  options: { format?: PixelFormat } = {},
): Promise<RenderedPicture> {
  const bytes = deprocessImage(data, c, height, width, layout);
  let rgb: Uint8Array;
  if (c === 3) rgb = bytes;
  else if (c === 1) {
    rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = bytes[i];
  } else throw invalidRange('c', '1 or 3 channels for a picture', c);
  return finish(rgb, width, height, options.format ?? 'png');
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
