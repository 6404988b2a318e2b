import assert from 'node:assert/strict';
import { checkInputBatch } from '../lib/cam/input';

describe('input batch validation', () => {
  const ok = { data: new Float32Array(2 * 3 * 4 * 5), shape: [2, 3, 4, 5] as [number, number, number, number], layout: 'nchw' as const };

  it('accepts a consistent batch and checks it against the model', () => {
    assert.equal(checkInputBatch(ok, 'nchw', [1, 3, 4, 5]), ok);
    assert.equal(checkInputBatch(ok, undefined, [-1, 3, null, -1]), ok);
  });

  it('names the argument in every error', () => {
    assert.throws(() => checkInputBatch(null), { name: 'TypeError', message: 'Expected object { data, shape, layout } for input but received null' });
    assert.throws(() => checkInputBatch({ ...ok, data: new Float64Array(120) }), { name: 'TypeError', message: 'Expected Float32Array for input.data but received Float64Array(120)' });
    assert.throws(() => checkInputBatch({ ...ok, shape: [2, 3, 4] }), { name: 'TypeError', message: 'Expected array of 4 positive integers for input.shape but received [2,3,4]' });
    assert.throws(() => checkInputBatch({ ...ok, shape: [0, 3, 4, 5] }), { name: 'RangeError', message: 'Expected positive integer for input.shape[0] but received 0 of type number' });
    assert.throws(() => checkInputBatch({ ...ok, shape: [2, NaN, 4, 5] }), { name: 'RangeError', message: 'Expected positive integer for input.shape[1] but received NaN of type number' });
    assert.throws(() => checkInputBatch({ ...ok, layout: 'chw' }), { name: 'RangeError', message: "Expected one of 'nchw', 'nhwc' for input.layout but received 'chw' of type string" });
    assert.throws(() => checkInputBatch({ ...ok, shape: [2, 3, 4, 6] }), { name: 'RangeError', message: 'Expected Float32Array of length 144 (input.shape 2x3x4x6) for input.data but received Float32Array(120)' });
    assert.throws(() => checkInputBatch(ok, 'nhwc'), { name: 'RangeError', message: "Expected 'nhwc' (the model's layout) for input.layout but received 'nchw' of type string" });
    assert.throws(() => checkInputBatch(ok, 'nchw', [-1, 1, 4, 5]), { name: 'RangeError', message: "Expected 1 (the model's input is [N,1,4,5], nchw) for input.shape[1] but received 3 of type number" });
    assert.throws(() => checkInputBatch(ok, 'nchw', [1, 3, 224, null]), /Expected 224 \(the model's input is \[N,3,224,\?\], nchw\) for input.shape\[2\]/);
    const bad = new Float32Array(120); bad[7] = NaN;
    assert.throws(() => checkInputBatch({ ...ok, data: bad }), { name: 'RangeError', message: 'Expected finite values for input.data but received NaN at index 7' });
    bad[7] = 0; bad[100] = -Infinity;
    assert.throws(() => checkInputBatch({ ...ok, data: bad }), { name: 'RangeError', message: 'Expected finite values for input.data but received -Infinity at index 100' });
  });
});
