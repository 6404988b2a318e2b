/**
 * Limits on the picture sizes the library makes. A size is a request for memory: the resized RGB
 * picture (3 bytes a pixel), its float copy (12 bytes) and the model input (4 bytes a value per
 * channel). Without a limit, a typo such as 30000x30000 asks for about 8 GB before any error.
 * 4096 x 4096 (16,777,216 pixels, ~270 MB per picture in all) is far above any classifier's input.
 */
import { checkPositiveInteger } from '../errors';

/** The largest width or height accepted for preprocessing, overlays and pictures. */
export const MAX_IMAGE_SIDE = 16384;
/** The largest width x height accepted (4096 x 4096). */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

function tooLarge(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'EARGRANGE' });
}

/**
 * Checks a picture size: positive integers, each side at most MAX_IMAGE_SIDE, the area at most
 * MAX_IMAGE_PIXELS. The message names the arguments, e.g.
 *   Expected width x height of at most 16777216 pixels (4096x4096) but received 30000x30000 (900000000 pixels)
 */
export function checkImageSize(width: unknown, height: unknown, names: [string, string] = ['width', 'height']): void {
  checkPositiveInteger(names[0], width);
  checkPositiveInteger(names[1], height);
  const w = width as number;
  const h = height as number;
  if (w * h > MAX_IMAGE_PIXELS) {
    throw tooLarge(`Expected ${names[0]} x ${names[1]} of at most ${MAX_IMAGE_PIXELS} pixels (4096x4096) but received ${w}x${h} (${w * h} pixels)`);
  }
  for (const [name, v] of [[names[0], w], [names[1], h]] as const) {
    if (v > MAX_IMAGE_SIDE) throw tooLarge(`Expected integer between 1 and ${MAX_IMAGE_SIDE} for ${name} but received ${v}`);
  }
}
