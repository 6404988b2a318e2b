/**
 * pytorch-grad-cam's show_cam_on_image, in float32 arithmetic as numpy does it:
 *
 *   heatmap = cv2.applyColorMap(np.uint8(255 * mask), colormap)   # then BGR -> RGB
 *   heatmap = np.float32(heatmap) / 255
 *   cam = (1 - image_weight) * heatmap + image_weight * img
 *   cam = cam / np.max(cam)
 *   return np.uint8(255 * cam)
 *
 * `img` is the picture as float RGB in [0,1], interleaved [H,W,3]; `mask` the [H,W] map in [0,1].
 */
import { checkFloat32Array, checkOneOf, checkPositiveInteger, invalidRange, invalidType } from '../errors';
import { pictureReference } from '../kernels/pictures';
import { COLORMAPS, type ColormapName } from './colormap';

export interface OverlayOptions {
  /** default 'jet' */
  colormap?: ColormapName;
  /**
   * weight of the image in the blend, 0..1 (pytorch-grad-cam's image_weight, default 0.5).
   * The heatmap gets 1 - imageWeight.
   */
  imageWeight?: number;
  /** weight of the heatmap, 0..1: a synonym for 1 - imageWeight (the CLI's --alpha). Give one or the other. */
  alpha?: number;
}

export function resolveImageWeight(options: OverlayOptions = {}): number {
  const { imageWeight, alpha } = options;
  if (imageWeight !== undefined && alpha !== undefined) {
    throw invalidType('options', 'either imageWeight or alpha, not both', options);
  }
  const name = alpha !== undefined ? 'alpha' : 'imageWeight';
  const v = alpha !== undefined ? alpha : imageWeight ?? 0.5;
  if (typeof v !== 'number') throw invalidType(name, 'number between 0 and 1', v);
  if (!(v >= 0 && v <= 1)) throw invalidRange(name, 'number between 0 and 1', v);
  return alpha !== undefined ? 1 - alpha : v;
}

/**
 * Blend a colormapped map with an image, as show_cam_on_image(img, mask, use_rgb=True, ...).
 * image: Float32Array [H*W*3] RGB in [0,1]; map: Float32Array [H*W] in [0,1].
 * Returns interleaved RGB bytes, Uint8Array(H*W*3).
 */
export function showCamOnImage(
  image: Float32Array,
  map: Float32Array,
  width: number,
  height: number,
  options: OverlayOptions = {},
): Uint8Array {
  checkPositiveInteger('width', width);
  checkPositiveInteger('height', height);
  checkFloat32Array('image', image, width * height * 3);
  checkFloat32Array('map', map, width * height);
  const imageWeight = resolveImageWeight(options);
  const colormap = options.colormap ?? 'jet';
  checkOneOf('colormap', colormap, COLORMAPS);
  let imgMax = -Infinity;
  for (let i = 0; i < image.length; i++) if (image[i] > imgMax) imgMax = image[i];
  if (imgMax > 1) throw invalidRange('image', 'float RGB values in [0, 1]', image);
  // the picture kernel's twin (lib/kernels/pictures.ts) on a batch of one
  return pictureReference.showCamOnImage(image, map, 1, height, width, { colormap, imageWeight });
}

/** Interleaved RGB bytes [H*W*3] -> RGBA bytes [H*W*4] with alpha 255. */
export function rgbToRgba(rgb: Uint8Array): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = rgb[i * 3];
    out[i * 4 + 1] = rgb[i * 3 + 1];
    out[i * 4 + 2] = rgb[i * 3 + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}
