/**
 * sharp, loaded on first use: requiring it maps libvips (about 0.1 s of a process start), which a
 * run that decodes no picture, or not yet, need not wait for (the ONNX worker thread starts first).
 */
import type sharpType from 'sharp';

let mod: typeof sharpType | undefined;

export function sharp(...args: Parameters<typeof sharpType>): ReturnType<typeof sharpType> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  mod ??= require('sharp') as typeof sharpType;
  return mod(...args);
}
