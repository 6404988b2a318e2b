/** Validation of the model input batch, shared by every adapter. */
import { invalidRange, invalidType } from '../errors';
import type { InputBatch, Layout } from '../types';

/**
 * Checks an InputBatch: a Float32Array of finite values whose length multiplies out from a 4-D
 * positive integer shape, in the model's layout when `layout` is given, and matching the model's
 * declared shape `expected` (same order as input.shape; null, -1 or 0 = any) in every dim but the batch.
 */
export function checkInputBatch(input: unknown, layout?: Layout, expected?: ReadonlyArray<number | null>): InputBatch {
  if (typeof input !== 'object' || input === null) throw invalidType('input', 'object { data, shape, layout }', input);
  const b = input as Partial<InputBatch>;
  if (!(b.data instanceof Float32Array)) throw invalidType('input.data', 'Float32Array', b.data);
  // ONNX Runtime refuses memory it cannot own ("Invalid argument") and worker transfers cannot move
  // it: a Float32Array over a SharedArrayBuffer is copied once into ordinary memory, for every adapter
  const data: Float32Array = b.data.buffer instanceof ArrayBuffer ? b.data : new Float32Array(b.data);
  if (!Array.isArray(b.shape) || b.shape.length !== 4) throw invalidType('input.shape', 'array of 4 positive integers', b.shape);
  b.shape.forEach((d, i) => {
    if (typeof d !== 'number') throw invalidType(`input.shape[${i}]`, 'positive integer', d);
    if (!Number.isInteger(d) || d <= 0) throw invalidRange(`input.shape[${i}]`, 'positive integer', d);
  });
  if (b.layout !== 'nchw' && b.layout !== 'nhwc') {
    if (typeof b.layout !== 'string') throw invalidType('input.layout', "one of 'nchw', 'nhwc'", b.layout);
    throw invalidRange('input.layout', "one of 'nchw', 'nhwc'", b.layout);
  }
  const length = b.shape.reduce((a, c) => a * c, 1);
  if (length > 2 ** 31 - 1) throw invalidRange('input.shape', 'a shape of at most 2^31-1 elements', b.shape);
  if (data.length !== length) {
    throw invalidRange('input.data', `Float32Array of length ${length} (input.shape ${b.shape.join('x')})`, b.data);
  }
  if (layout !== undefined && b.layout !== layout) {
    throw invalidRange('input.layout', `'${layout}' (the model's layout)`, b.layout);
  }
  if (expected) {
    const known = (v: number | null | undefined): v is number => typeof v === 'number' && v > 0;
    b.shape.forEach((d, i) => {
      const e = expected[i];
      if (i > 0 && known(e) && e !== d) {
        const model = expected.map((v, j) => (j === 0 ? 'N' : known(v) ? v : '?')).join(',');
        throw invalidRange(`input.shape[${i}]`, `${e} (the model's input is [${model}], ${b.layout})`, d);
      }
    });
  }
  for (let i = 0; i < data.length; i++) {
    // x - x is NaN exactly for NaN and +-Infinity: one cheap test per element
    if (data[i] - data[i] !== 0) {
      throw Object.assign(new RangeError(`Expected finite values for input.data but received ${data[i]} at index ${i}`), { code: 'EARGRANGE' });
    }
  }
  return data === b.data ? (b as InputBatch) : { ...(b as InputBatch), data };
}
