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
import { pictureReference } from '../kernels/pictures';
import type { Layout } from '../kernels/types';

export { numpyMeanStdF32, numpySumF32 } from '../kernels/pictures';

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
  // the picture kernel's twin (lib/kernels/pictures.ts) on a batch of one
  return pictureReference.deprocessImage(data, 1, c, height, width, layout);
}
