/** Validation of the model input batch, shared by every adapter. */
import { invalidRange, invalidType } from '../errors';
import type { InputBatch, Layout } from '../types';

export interface ExpectedInput {
  layout?: Layout;
  /** channels the model expects (undefined: any) */
  channels?: number;
  /** spatial size the model expects (undefined or -1: any) */
  height?: number;
  width?: number;
}

/** Checks an InputBatch: a Float32Array whose length multiplies out from a 4-D positive integer shape. */
export function checkInputBatch(input: unknown, expected: ExpectedInput = {}, name = 'input'): InputBatch {
  if (typeof input !== 'object' || input === null) throw invalidType(name, 'object { data, shape, layout }', input);
  const b = input as Partial<InputBatch>;
  if (!(b.data instanceof Float32Array)) throw invalidType(`${name}.data`, 'Float32Array', b.data);
  if (!Array.isArray(b.shape) || b.shape.length !== 4) throw invalidType(`${name}.shape`, 'array of 4 positive integers', b.shape);
  b.shape.forEach((d, i) => {
    if (typeof d !== 'number') throw invalidType(`${name}.shape[${i}]`, 'positive integer', d);
    if (!Number.isInteger(d) || d <= 0) throw invalidRange(`${name}.shape[${i}]`, 'positive integer', d);
  });
  if (b.layout !== 'nchw' && b.layout !== 'nhwc') throw invalidRange(`${name}.layout`, "one of 'nchw', 'nhwc'", b.layout);
  const [n, d1, d2, d3] = b.shape;
  const length = n * d1 * d2 * d3;
  if (!Number.isSafeInteger(length) || length > 2 ** 31 - 1) throw invalidRange(`${name}.shape`, 'a shape of at most 2^31-1 elements', b.shape);
  if (b.data.length !== length) throw invalidRange(`${name}.data`, `Float32Array of length ${length} (shape [${b.shape.join(',')}])`, b.data);
  if (expected.layout && b.layout !== expected.layout) {
    throw invalidRange(`${name}.layout`, `'${expected.layout}' (the model's layout)`, b.layout);
  }
  const [c, h, w] = b.layout === 'nchw' ? [d1, d2, d3] : [d3, d1, d2];
  if (expected.channels !== undefined && expected.channels > 0 && c !== expected.channels) {
    throw invalidRange(`${name}.shape`, `${expected.channels} channels (${b.layout})`, b.shape);
  }
  if (expected.height !== undefined && expected.height > 0 && h !== expected.height) {
    throw invalidRange(`${name}.shape`, `height ${expected.height} (${b.layout})`, b.shape);
  }
  if (expected.width !== undefined && expected.width > 0 && w !== expected.width) {
    throw invalidRange(`${name}.shape`, `width ${expected.width} (${b.layout})`, b.shape);
  }
  for (let i = 0; i < b.data.length; i++) {
    if (!Number.isFinite(b.data[i])) {
      throw new RangeError(`Expected finite values for ${name}.data but received ${b.data[i]} at index ${i}`);
    }
  }
  return b as InputBatch;
}
