/**
 * The main thread's share of the work, made cheaper without changing a bit: preprocessing without
 * per-pixel allocations (against the straightforward per-pixel reference), 8-bit pictures turned
 * into the batch by tables, the input batch in reused SharedArrayBuffer memory crossing to the
 * ONNX worker thread shared (ORT itself refuses shared memory: the worker copies it), batch arrays
 * reused by the stream, views instead of copies where the data already lies in one array.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { batchOf } from '../lib/cli/explain';
import { COPIES_INPUT, explain } from '../lib/cam/explain';
import { explainStream } from '../lib/cam/stream';
import { decodeImage, decodePixels, pixelsToImages, pixelsToInputBatch, preprocessImages, toInputBatch, type DecodedImage, type DecodedPixels, type PreprocessSpec } from '../lib/image/preprocess';
import { createOnnxExplainer, type OnnxExplainer } from '../lib/onnx/explainer';
import { SharedInputPool, WorkerRunner, ownedFeed } from '../lib/onnx/runtime';
import type { ExplainOptions, Explainer, InputBatch } from '../lib/types';
import { FakeAdapter } from './helpers/fake-adapter';
import { repoRoot } from './helpers/reference-data';

/** The per-pixel code toInputBatch had (one [r, g, b] array per pixel), as the reference. */
function referenceBatch(images: readonly DecodedImage[], s: Required<PreprocessSpec>): Float32Array {
  const { width: W, height: H, channels: c, layout } = s;
  const hw = W * H;
  const data = new Float32Array(images.length * c * hw);
  const k = 255 / s.pixelScale;
  images.forEach((img, n) => {
    const base = n * c * hw;
    for (let p = 0; p < hw; p++) {
      const r = img.rgb[p * 3] * k;
      const g = img.rgb[p * 3 + 1] * k;
      const b = img.rgb[p * 3 + 2] * k;
      const values = c === 1 ? [0.2989 * r + 0.587 * g + 0.114 * b] : [r, g, b];
      for (let ch = 0; ch < c; ch++) {
        data[layout === 'nchw' ? base + ch * hw + p : base + p * c + ch] = (values[ch] - s.mean[ch]) / s.std[ch];
      }
    }
  });
  return data;
}

/** Bit-exact equality of two float arrays (NaN and -0 included), naming the first difference. */
function sameBits(got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`value ${i}: ${got[i]} != ${want[i]}`);
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const W = 7;
const H = 5;

function pixelsOf(n: number, seed: number): DecodedPixels[] {
  const rnd = lcg(seed);
  return Array.from({ length: n }, () => ({
    pixels: Uint8Array.from({ length: W * H * 3 }, () => Math.floor(rnd() * 256)),
    width: W, height: H, originalWidth: 2 * W, originalHeight: 2 * H,
  }));
}

const SPECS: Array<Required<PreprocessSpec>> = [];
for (const layout of ['nchw', 'nhwc'] as const) {
  for (const channels of [1, 3] as const) {
    for (const pixelScale of [255, 1]) {
      const mean = channels === 3 ? (pixelScale === 1 ? [103.9, 116.8, 123.7] : [0.485, 0.456, 0.406]) : [0.449];
      const std = channels === 3 ? (pixelScale === 1 ? [1, 1, 1] : [0.229, 0.224, 0.225]) : [0.226];
      SPECS.push({ width: W, height: H, layout, channels, pixelScale, mean, std });
    }
  }
}

describe('main-thread work: preprocessing', () => {
  for (const s of SPECS) {
    const name = `${s.layout}, ${s.channels} channel${s.channels > 1 ? 's' : ''}, pixelScale ${s.pixelScale}`;
    it(`toInputBatch equals the per-pixel reference bit for bit (${name}, any float RGB)`, () => {
      const rnd = lcg(7);
      // not only k/255 values: the arithmetic itself must be the reference's
      const images: DecodedImage[] = Array.from({ length: 3 }, () => ({
        rgb: Float32Array.from({ length: W * H * 3 }, () => rnd() * 1.2 - 0.1), width: W, height: H, originalWidth: W, originalHeight: H,
      }));
      const b = toInputBatch(images, s);
      sameBits(b.data, referenceBatch(images, s));
      assert.deepEqual(b.shape, s.layout === 'nchw' ? [3, s.channels, H, W] : [3, H, W, s.channels]);
      assert.equal(b.layout, s.layout);
    });

    it(`pixelsToInputBatch equals toInputBatch of the float pictures bit for bit (${name}), into a reused array too`, () => {
      const px = pixelsOf(4, 11);
      const floats: DecodedImage[] = px.map((p) => ({ ...p, rgb: Float32Array.from(p.pixels, (v) => v / 255) }));
      const want = referenceBatch(floats, s);
      sameBits(pixelsToInputBatch(px, s).data, want);
      const out = new Float32Array(want.length).fill(NaN);
      const got = pixelsToInputBatch(px, s, out);
      assert.equal(got.data, out, 'written into the array given');
      sameBits(out, want);
      // an array of another length is not used
      const wrong = new Float32Array(want.length + 1);
      assert.notEqual(pixelsToInputBatch(px, s, wrong).data, wrong);
    });
  }

  it('every byte value gives the float decodeImage stores (v / 255), in every channel', () => {
    const all: DecodedPixels = { pixels: Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256), width: 256, height: 1, originalWidth: 256, originalHeight: 1 };
    const s = { width: 256, height: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    const floats = { ...all, rgb: Float32Array.from(all.pixels, (v) => v / 255) };
    sameBits(pixelsToImages([all])[0].rgb, floats.rgb);
    sameBits(pixelsToInputBatch([all], s).data, referenceBatch([floats], { ...s, layout: 'nchw', channels: 3, pixelScale: 255 }));
  });

  it('pixelsToImages: rgb made on first read, all pictures in one array, in order; rgb can be replaced', () => {
    const px = pixelsOf(3, 5);
    const images = pixelsToImages(px);
    const per = W * H * 3;
    images.forEach((img, i) => {
      assert.equal(img.pixels, px[i].pixels);
      assert.equal(img.originalWidth, 2 * W);
      sameBits(img.rgb, Float32Array.from(px[i].pixels, (v) => v / 255));
      assert.equal(img.rgb.buffer, images[0].rgb.buffer);
      assert.equal(img.rgb.byteOffset, i * per * 4);
    });
    assert.equal(images[1].rgb, images[1].rgb, 'made once');
    const mine = new Float32Array(per);
    images[2].rgb = mine;
    assert.equal(images[2].rgb, mine);
  });

  it('decodeImage keeps the 8-bit pixels; preprocessImages equals decodeImage + toInputBatch', async () => {
    const raw = Buffer.alloc(9 * 6 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 256;
    const png = await sharp(raw, { raw: { width: 9, height: 6, channels: 3 } }).png().toBuffer();
    const d = await decodeImage(png, W, H);
    const p = await decodePixels(png, W, H);
    assert.deepEqual(d.pixels, p.pixels);
    sameBits(d.rgb, Float32Array.from(p.pixels, (v) => v / 255));
    assert.deepEqual([d.originalWidth, d.originalHeight], [9, 6]);
    for (const s of SPECS) {
      const both = await preprocessImages([png, png], s);
      sameBits(both.batch.data, toInputBatch([d, d], s).data);
      sameBits(both.images[1].rgb, d.rgb);
    }
  });
});

describe('main-thread work: batches without copies', () => {
  it('batchOf: a view where the arrays lie one after the other in one buffer, else a copy', () => {
    const all = Float32Array.from({ length: 12 }, (_, i) => i);
    const parts = [all.subarray(0, 4), all.subarray(4, 8), all.subarray(8, 12)];
    const v = batchOf(parts, 4);
    assert.equal(v.buffer, all.buffer);
    assert.deepEqual(v, all);
    const tail = batchOf(parts.slice(1), 4);
    assert.equal(tail.buffer, all.buffer);
    assert.equal(tail.byteOffset, 16);
    // out of order, repeated (top-k: one picture per class), or of another length: copied
    for (const list of [[parts[1], parts[0]], [parts[0], parts[0]], [all.subarray(0, 3), all.subarray(3, 6)]]) {
      const c = batchOf(list, 4);
      assert.notEqual(c.buffer, all.buffer);
      const want = new Float32Array(list.length * 4);
      list.forEach((a, j) => want.set(a, j * 4));
      assert.deepEqual(c, want);
    }
  });

  it('SharedInputPool: shared memory, reused once released, never handed out twice at once', () => {
    const pool = new SharedInputPool();
    const a = pool.acquire(10);
    assert.ok(a.data.buffer instanceof SharedArrayBuffer);
    assert.equal(a.data.length, 10);
    const b = pool.acquire(10);
    assert.notEqual(b.data.buffer, a.data.buffer);
    a.release();
    a.release(); // twice: once
    const c = pool.acquire(10);
    assert.equal(c.data.buffer, a.data.buffer);
    const d = pool.acquire(10);
    assert.notEqual(d.data.buffer, a.data.buffer);
    assert.notEqual(pool.acquire(11).data.buffer, a.data.buffer, 'another size, another buffer');
  });

  it('ownedFeed: a shared array is copied into ordinary memory (reused from the pool), others pass as they are', () => {
    const sab = new Float32Array(new SharedArrayBuffer(40));
    sab.forEach((_, i) => (sab[i] = i + 0.5));
    const view = sab.subarray(3, 7);
    const plain = new Float32Array([1, 2]);
    assert.equal(ownedFeed({ type: 'float32', data: plain, dims: [2] }).data, plain);
    const free: ArrayBuffer[] = [new ArrayBuffer(8), new ArrayBuffer(16)];
    const got = ownedFeed({ type: 'float32', data: view, dims: [4] }, free);
    assert.ok(got.buffer instanceof ArrayBuffer);
    assert.equal(free.length, 1, 'the 16-byte buffer was taken');
    assert.deepEqual(Array.from(got.data as Float32Array), [3.5, 4.5, 5.5, 6.5]);
    const ints = new BigInt64Array(new SharedArrayBuffer(16));
    ints[1] = 7n;
    const gi = ownedFeed({ type: 'int64', data: ints, dims: [2] });
    assert.ok(gi.data instanceof BigInt64Array && gi.data.buffer instanceof ArrayBuffer && gi.data[1] === 7n);
  });
});

describe('main-thread work: the input batch shared with the ONNX worker thread', () => {
  const file = path.join(repoRoot(), 'test', 'fixtures', 'onnx', 'resnet_o13', 'model.onnx');

  it('ONNX Runtime refuses shared memory itself (why the worker copies it)', async () => {
    const s = await ort.InferenceSession.create(file);
    try {
      const data = new Float32Array(new SharedArrayBuffer(3 * 32 * 32 * 4));
      await assert.rejects(s.run({ [s.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, 32, 32]) }));
    } finally {
      await s.release();
    }
  });

  it('WorkerRunner: a feed over a SharedArrayBuffer (a view at an offset too) gives the outputs of the plain array, run after run', async () => {
    const s = await ort.InferenceSession.create(file);
    const input = s.inputNames[0];
    await s.release();
    const runner = await WorkerRunner.create(new Uint8Array(fs.readFileSync(file)), 'cpu', 1, 1);
    try {
      const per = 3 * 32 * 32;
      const plain = Float32Array.from({ length: 2 * per }, (_, i) => Math.sin(i * 0.01));
      const want = await runner.run({ [input]: { type: 'float32', data: plain, dims: [2, 3, 32, 32] } });
      const shared = new Float32Array(new SharedArrayBuffer((3 * per) * 4));
      shared.set(plain, per);
      for (let r = 0; r < 3; r++) {
        const got = await runner.run({ [input]: { type: 'float32', data: shared.subarray(per), dims: [2, 3, 32, 32] } });
        for (const k of Object.keys(want)) assert.deepEqual(got[k].data, want[k].data, `${k}, run ${r}`);
      }
      // the worker reads the shared memory when the run is posted: the next values are the next run's
      shared.subarray(per).fill(0.25);
      const zero = await runner.run({ [input]: { type: 'float32', data: shared.subarray(per), dims: [2, 3, 32, 32] } });
      const quarter = await runner.run({ [input]: { type: 'float32', data: new Float32Array(2 * per).fill(0.25), dims: [2, 3, 32, 32] } });
      for (const k of Object.keys(want)) assert.deepEqual(zero[k].data, quarter[k].data);
    } finally {
      await runner.release();
    }
  });

  it('explain() with a worker: the batch in shared memory, the results of the in-thread session bit for bit; the caller may change its array at once', async () => {
    // a model of any batch size (augSmooth explains 6 copies of each image at once)
    const any = path.join(repoRoot(), 'test', 'fixtures', 'onnx', 'misc_o11', 'model.onnx');
    const inWorker = (await createOnnxExplainer(any, { workers: 1 })) as OnnxExplainer;
    const inThread = (await createOnnxExplainer(any, { workers: 0 })) as OnnxExplainer;
    try {
      const shared = inWorker.adapter.inputArray(12);
      assert.ok(shared && shared.data.buffer instanceof SharedArrayBuffer);
      shared.release();
      assert.equal(inThread.adapter.inputArray(12), undefined, 'in this thread: a plain copy (ORT takes no shared memory)');
      const data = Float32Array.from({ length: 3 * 3 * 32 * 32 }, (_, i) => Math.cos(i * 0.003));
      for (const options of [{ method: 'gradcam', targets: { topK: 2 } }, { method: 'guided-gradcam' }, { method: 'gradcam', augSmooth: true }] as ExplainOptions[]) {
        const want = await inThread.explain({ data, shape: [3, 3, 32, 32], layout: 'nchw' }, options);
        const mine = data.slice();
        const pending = inWorker.explain({ data: mine, shape: [3, 3, 32, 32], layout: 'nchw' }, options);
        mine.fill(1e30); // after the call: not seen
        const got = await pending;
        assert.deepEqual(got.logits, want.logits);
        assert.equal(got.explanations.length, want.explanations.length);
        got.explanations.forEach((e, i) => {
          assert.deepEqual(e.map, want.explanations[i].map);
          assert.deepEqual(e.guidedMap, want.explanations[i].guidedMap);
        });
      }
    } finally {
      inWorker.dispose();
      inThread.dispose();
    }
  });
});

describe('main-thread work: the stream reuses its batch arrays for explainers that copy at call time', () => {
  const SPEC = { width: 16, height: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const pictures = (count: number): Promise<Buffer[]> => Promise.all(Array.from({ length: count }, (_, i) => {
    const px = Buffer.alloc(16 * 16 * 3);
    for (let p = 0; p < px.length; p++) px[p] = (i * 53 + p * 7) % 256;
    return sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
  }));
  const fake = (copies: boolean): Explainer & { inputs: InputBatch[]; copies: Float32Array[] } => {
    const adapter = new FakeAdapter({ numClasses: 5 });
    const ex = {
      engine: 'fake', layout: adapter.layout, inputShape: adapter.inputShape, defaultLayer: adapter.defaultLayer,
      layers: () => adapter.layers(),
      inputs: [] as InputBatch[],
      copies: [] as Float32Array[],
      explain(input: InputBatch, options?: ExplainOptions) {
        ex.inputs.push(input);
        ex.copies.push(input.data.slice());
        return explain(adapter, input, options);
      },
      dispose() {},
      ...(copies ? { [COPIES_INPUT]: true } : {}),
    };
    return ex;
  };

  it('marked: two arrays serve every batch, each seen with its own values; unmarked: one array per batch, kept', async () => {
    const pics = await pictures(20);
    const direct = await preprocessImages(pics, { ...SPEC, layout: 'nchw' });
    const per = 3 * 16 * 16;
    const results: Array<Array<Float32Array | undefined>> = [];
    for (const marked of [true, false]) {
      const ex = fake(marked);
      const maps: Array<Float32Array | undefined> = [];
      for await (const b of explainStream(ex, pics, { ...SPEC, batchSize: 4, explain: { method: 'gradcam' } })) {
        for (const item of b.items) maps.push(item.explanations[0]?.map?.slice());
      }
      results.push(maps);
      assert.equal(ex.inputs.length, 5);
      // what explain() saw at call time is the batch of those pictures
      ex.copies.forEach((c, i) => assert.deepEqual(c, direct.batch.data.subarray(i * 4 * per, (i + 1) * 4 * per)));
      const buffers = new Set(ex.inputs.map((x) => x.data.buffer));
      // one array when each explain() ends before the next batch is decoded, two when they overlap
      if (marked) assert.ok(buffers.size <= 2, `reused (${buffers.size} arrays)`);
      else {
        assert.equal(buffers.size, 5, 'one array per batch');
        ex.inputs.forEach((x, i) => assert.deepEqual(x.data, ex.copies[i]), 'not overwritten');
      }
    }
    assert.deepEqual(results[0], results[1]);
  });
});
