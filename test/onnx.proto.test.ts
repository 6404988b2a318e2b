import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DataType, floatTensor, getAttr, int64Tensor, loadModel, node, saveModel, tensorToFloat32, tensorToNumbers } from '../lib/onnx/proto';
import { hasFile, referenceDir } from './helpers/reference-data';
import { NO_REFERENCE, skipBecause } from './helpers/skip';

describe('ONNX protobuf I/O', () => {
  it('decodes and re-encodes the reference models byte for byte', function () {
    if (!hasFile('models/smallvgg.onnx')) skipBecause(this, NO_REFERENCE);
    const file = path.join(referenceDir(), 'models/smallvgg.onnx');
    const bytes = fs.readFileSync(file);
    const m = loadModel(bytes);
    assert.equal(m.graph!.node!.length, 23);
    assert.equal(Buffer.compare(Buffer.from(saveModel(m)), bytes), 0);
    const conv = m.graph!.node!.find((x) => x.opType === 'Conv')!;
    assert.deepEqual(getAttr(conv, 'kernel_shape'), [3, 3]);
    const w = m.graph!.initializer!.find((t) => t.name === conv.input![1])!;
    assert.equal(tensorToFloat32(w).length, 16 * 3 * 3 * 3);
  });

  it('int64 tensors saturate at the int64 range instead of wrapping (Slice ends of INT64_MAX)', () => {
    const t = int64Tensor('ends', [4], [2 ** 63, -(2 ** 63) * 2, 5, -7]);
    const v = new BigInt64Array(t.rawData!.buffer, t.rawData!.byteOffset, 4);
    assert.deepEqual(Array.from(v), [2n ** 63n - 1n, -(2n ** 63n), 5n, -7n]);
    assert.deepEqual(tensorToNumbers(t).slice(2), [5, -7]);
    assert.ok(tensorToNumbers(t)[0] > 9e18);
  });

  it('float tensors in raw_data and in float_data read the same', () => {
    const raw = floatTensor('w', [2, 2], [1.5, -2, 0.25, 3]);
    const typed = { name: 'w', dims: [2, 2], dataType: DataType.FLOAT, floatData: [1.5, -2, 0.25, 3] };
    assert.deepEqual(Array.from(tensorToFloat32(raw)), [1.5, -2, 0.25, 3]);
    assert.deepEqual(Array.from(tensorToFloat32(typed)), [1.5, -2, 0.25, 3]);
    const n = node('Transpose', ['x'], ['y'], 't', { perm: [0, 2, 3, 1] });
    assert.deepEqual(getAttr(n, 'perm'), [0, 2, 3, 1]);
  });

  it('rejects what is not a model with a clear error', () => {
    assert.throws(() => loadModel(new Uint8Array([1, 2, 3])), /Not an ONNX model/);
    assert.throws(() => loadModel('/nonexistent/model.onnx'), /Cannot read ONNX model \/nonexistent\/model.onnx/);
    assert.throws(() => loadModel(42 as unknown as string), { name: 'TypeError', message: 'Expected ONNX file path or Uint8Array for model but received 42 of type number' });
  });
});
