/**
 * explainStream (lib/cam/stream.ts): order, back-pressure, errors of the iterable and of single
 * pictures, on an Explainer over the fake adapter (the pipeline's own explain(), the fake's
 * arithmetic model), with a delay per explain call so that work overlaps.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { createExplainer } from '../lib/index';
import { NpyAppender, readNpy, renderOverlay } from '../lib/image';
import { isTempName } from '../lib/io/atomic';
import { explain } from '../lib/cam/explain';
import { explainStream, type StreamBatch, type StreamInput } from '../lib/cam/stream';
import { preprocessImages } from '../lib/image';
import type { ExplainOptions, Explainer, InputBatch } from '../lib/types';
import { FakeAdapter } from './helpers/fake-adapter';

const SPEC = { width: 16, height: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An Explainer over the fake adapter; each explain() takes `delay(call)` ms and is counted. */
function fakeExplainer(delay: (call: number) => number = () => 0): Explainer & { calls: number; inputs: InputBatch[]; running: number; maxRunning: number } {
  const adapter = new FakeAdapter({ numClasses: 5 });
  const ex = {
    engine: 'fake',
    layout: adapter.layout,
    inputShape: adapter.inputShape,
    defaultLayer: adapter.defaultLayer,
    layers: () => adapter.layers(),
    calls: 0,
    inputs: [] as InputBatch[],
    running: 0,
    maxRunning: 0,
    async explain(input: InputBatch, options?: ExplainOptions) {
      const call = ex.calls++;
      ex.inputs.push(input);
      ex.running++;
      ex.maxRunning = Math.max(ex.maxRunning, ex.running);
      try {
        await sleep(delay(call));
        return await explain(adapter, input, options);
      } finally {
        ex.running--;
      }
    },
    dispose() {},
  };
  return ex;
}

/** A PNG of side `side` whose colour depends on i (different sizes decode in different times). */
function picture(i: number, side = 16 + (i % 5) * 40): Promise<Buffer> {
  const px = Buffer.alloc(side * side * 3);
  for (let p = 0; p < side * side; p++) {
    px[p * 3] = (i * 37 + p) % 256;
    px[p * 3 + 1] = (i * 91 + 3 * p) % 256;
    px[p * 3 + 2] = (i * 13 + 7 * (p % side)) % 256;
  }
  return sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
}

async function collect(stream: AsyncIterable<StreamBatch>): Promise<StreamBatch[]> {
  const out: StreamBatch[] = [];
  for await (const b of stream) out.push(b);
  return out;
}

describe('explainStream', function () {
  this.timeout(60000);
  let pics: Buffer[];
  before(async () => {
    pics = await Promise.all(Array.from({ length: 23 }, (_, i) => picture(i)));
  });

  it('yields every input in order, each with the explanations of its own picture', async () => {
    // explain calls of varying length, pictures of varying decode cost
    const ex = fakeExplainer((c) => [15, 1, 8, 3][c % 4]);
    const batches = await collect(explainStream(ex, pics, { ...SPEC, batchSize: 4, explain: { method: 'gradcam', targets: { topK: 2 } } }));
    assert.equal(batches.length, 6);
    assert.equal(ex.maxRunning, 1, 'one explain() at a time');
    const items = batches.flatMap((b) => b.items);
    assert.deepEqual(items.map((i) => i.index), pics.map((_, i) => i));
    // the model saw each picture at its item's row (the fake's numbers depend on the row, so
    // the explanations are checked against explain() of the very batch that was streamed)
    const direct = await preprocessImages(pics, { ...SPEC, layout: 'nchw' });
    const per = 3 * 16 * 16;
    const rowsBatch = batches.flatMap((b) => b.items.map(() => b));
    for (const [i, item] of items.entries()) {
      assert.equal(item.input, pics[i]);
      assert.equal(item.error, undefined);
      assert.deepEqual(item.image?.rgb, direct.images[i].rgb);
      const b = rowsBatch[i];
      assert.deepEqual(ex.inputs[batches.indexOf(b)].data.subarray(item.row * per, (item.row + 1) * per), direct.batch.data.subarray(i * per, (i + 1) * per));
      assert.equal(item.explanations.length, 2);
      assert.deepEqual(item.explanations, b.result?.explanations.filter((e) => e.image === item.row));
    }
  });

  it('pulls the iterable at most two batches ahead of a slow consumer, and closes it on break', async () => {
    let pulled = 0;
    let closed = false;
    const total = 10000;
    function* counting(): Generator<StreamInput> {
      try {
        for (let i = 0; i < total; i++) {
          pulled++;
          yield pics[i % pics.length];
        }
      } finally {
        closed = true;
      }
    }
    const batchSize = 3;
    const ex = fakeExplainer(() => 1);
    let consumed = 0;
    let maxAhead = 0;
    for await (const b of explainStream(ex, counting(), { ...SPEC, batchSize })) {
      consumed += b.items.length;
      await sleep(30); // the slow consumer: rendering, writing
      maxAhead = Math.max(maxAhead, pulled - consumed);
      if (consumed >= 30) break;
    }
    // one batch explained while this one is consumed, one decoded ahead of it
    assert.ok(maxAhead <= 2 * batchSize, `pulled ${maxAhead} items ahead of the consumer`);
    assert.ok(pulled <= consumed + 2 * batchSize, `pulled ${pulled} of ${total}`);
    assert.ok(closed, 'the iterator was closed');
  });

  it('an iterable that throws midway: the results before it, then its error', async () => {
    async function* failing(): AsyncGenerator<StreamInput> {
      for (let i = 0; i < 7; i++) yield pics[i];
      throw new Error('disk went away');
    }
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const b of explainStream(fakeExplainer(() => 2), failing(), { ...SPEC, batchSize: 3 })) {
        for (const item of b.items) {
          assert.equal(item.error, undefined);
          assert.ok(item.explanations.length > 0);
          seen.push(item.index);
        }
      }
    }, /disk went away/);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6]);
  });

  it('a picture that does not decode has its own error; the rest go on', async () => {
    const inputs: StreamInput[] = [pics[0], pics[1], Buffer.from('not a picture'), pics[3], '/nonexistent/x.jpg', pics[5]];
    const batches = await collect(explainStream(fakeExplainer(), inputs, { ...SPEC, batchSize: 2 }));
    const items = batches.flatMap((b) => b.items);
    assert.deepEqual(items.map((i) => i.index), [0, 1, 2, 3, 4, 5]);
    assert.match(String(items[2].error?.message), /^cannot read image <13 bytes>: /);
    assert.equal((items[2].error as { code?: string }).code, 'EIMAGE');
    assert.match(String(items[4].error?.message), /^cannot read image \/nonexistent\/x\.jpg: /);
    for (const i of [0, 1, 3, 5]) {
      assert.equal(items[i].error, undefined);
      assert.equal(items[i].explanations.length, 1);
    }
    assert.equal(items[2].row, -1);
    assert.equal(items[3].row, 0, 'rows count only the pictures that decoded');
  });

  it('InputBatches are explained as given, between pictures', async () => {
    const { batch } = await preprocessImages(pics.slice(0, 2), { ...SPEC, layout: 'nchw' });
    const batches = await collect(explainStream(fakeExplainer(), [pics[0], batch, pics[1]], { ...SPEC, batchSize: 4 }));
    assert.deepEqual(batches.map((b) => b.items.map((i) => i.index)), [[0], [1, 2], [3]]);
    assert.deepEqual(batches[1].items.map((i) => i.row), [0, 1]);
    assert.equal(batches[1].items[0].input, batch);
    assert.equal(batches[1].result?.explanations.length, 2);
  });

  it("an explain() failure ends the stream with that batch, its items carrying the error", async () => {
    const batches = await collect(explainStream(fakeExplainer(), pics.slice(0, 6), { ...SPEC, batchSize: 2, explain: { layer: 'nope' } }));
    assert.equal(batches.length, 1);
    assert.match(String(batches[0].error?.message), /nope/);
    assert.ok(batches[0].items.every((i) => i.error === batches[0].error));
  });

  it('prepares the explainer for the pictures\' size before their first batch is decoded', async () => {
    const ex = fakeExplainer();
    const seen: Array<{ options?: ExplainOptions; size?: [number, number]; callsThen: number }> = [];
    const prepared = Object.assign(ex, {
      prepare: async (options?: ExplainOptions, size?: [number, number]) => { seen.push({ options, size, callsThen: ex.calls }); },
    });
    const batches = await collect(explainStream(prepared, pics.slice(0, 3), { width: 16, height: 12, batchSize: 2, explain: { method: 'gradcam++' } }));
    assert.equal(batches.length, 2);
    assert.deepEqual(seen, [{ options: { method: 'gradcam++' }, size: [12, 16], callsThen: 0 }]);
    // a failing prepare() is not the stream's error: explain() reports what is wrong
    const failing = Object.assign(fakeExplainer(), { prepare: () => Promise.reject(new Error('not now')) });
    const again = await collect(explainStream(failing, pics.slice(0, 2), { ...SPEC, batchSize: 2 }));
    assert.equal(again[0].error, undefined);
  });

  it('checks its options', async () => {
    await assert.rejects(collect(explainStream(fakeExplainer(), [pics[0]], { batchSize: 0 })), /Expected positive integer for batchSize but received 0/);
    await assert.rejects(collect(explainStream(fakeExplainer(), [pics[0]], { widht: 3 } as never)), /widht/);
    await assert.rejects(collect(explainStream(fakeExplainer(), [pics[0]], {})), /width and height/);
  });
});

describe('NpyAppender: rows appended as they come, the file named when complete', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-npy-append-'));

  it('is loadable and equal to the rows, with a header numpy reads', async () => {
    const file = path.join(dir, 'a.npy');
    const w = new NpyAppender(file, [3, 4]);
    const rows = Array.from({ length: 5 }, (_, i) => Float32Array.from({ length: 12 * (i % 2 + 1) }, (_, j) => i * 100 + j - 0.5));
    for (const r of rows) {
      await w.append(r);
      assert.equal(fs.existsSync(file), false, 'no final name before finish()');
      assert.equal(fs.readdirSync(dir).filter(isTempName).length, 1);
    }
    assert.deepEqual(await w.finish(), [7, 3, 4]);
    const back = readNpy(file);
    assert.deepEqual(back.shape, [7, 3, 4]);
    const want = new Float32Array(7 * 12);
    let at = 0;
    for (const r of rows) {
      want.set(r, at);
      at += r.length;
    }
    assert.deepEqual(back.data, want);
    assert.equal(fs.readFileSync(file).readUInt16LE(8) % 64, (64 - 10) % 64, 'the data starts on a 64-byte boundary');
    assert.deepEqual(fs.readdirSync(dir).filter(isTempName), []);
  });

  it('discard() leaves nothing; a partial row is refused', async () => {
    const file = path.join(dir, 'b.npy');
    const w = new NpyAppender(file, [2]);
    await w.append(new Float32Array([1, 2]));
    assert.throws(() => w.append(new Float32Array(3)), /multiple of 2 values/);
    await w.discard();
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.b.npy') || f === 'b.npy'), []);
  });
});

describe('gradcam explain on the stream: outputs equal explainStream with the same batches', function () {
  this.timeout(120000);
  const MAIN = path.resolve(__dirname, '../lib/cli/main.js');
  const MODEL = path.resolve(__dirname, '../../test/fixtures/onnx/misc_o11/model.onnx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-stream-cli-'));
  const imgs = path.join(dir, 'imgs');
  const mean = [0.4, 0.5, 0.6];
  const std = [0.2, 0.25, 0.3];

  it('--npy arrays, overlays and failures', async () => {
    fs.mkdirSync(imgs);
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(imgs, `p${i}.png`), await picture(i, 40 + i * 7));
    fs.writeFileSync(path.join(imgs, 'p2b.png'), 'not a picture'); // sorts between p2 and p3
    const out = path.join(dir, 'out');
    const r = spawnSync(process.execPath, [MAIN, 'explain', '--model', MODEL, '-i', imgs, '--out', out, '--size', '32x32', '--mean', mean.join(','), '--std', std.join(','),
      '--method', 'guided-gradcam', '--npy', '--batch-size', '2', '--device', 'cpu', '--json', '--quiet'], { encoding: 'utf8', timeout: 100000 });
    assert.equal(r.status, 1, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.failures.map((f: { input: string; code: string }) => [path.basename(f.input), f.code]), [['p2b.png', 'EIMAGE']]);
    assert.equal(doc.images.length, 5);

    const files = fs.readdirSync(imgs).sort().map((f) => path.join(imgs, f));
    const ex = await createExplainer(MODEL, { executionProvider: 'cpu' });
    const maps: Float32Array[] = [];
    const guided: Float32Array[] = [];
    try {
      for await (const b of explainStream(ex, files, { width: 32, height: 32, mean, std, batchSize: 2, explain: { method: 'guided-gradcam', device: 'cpu' } })) {
        for (const item of b.items) {
          for (const e of item.explanations) {
            maps.push(e.map as Float32Array);
            guided.push(e.guidedMap as Float32Array);
            if (item.index === 0) {
              const overlay = await renderOverlay((item.image as { rgb: Float32Array }).rgb, e.map as Float32Array, 32, 32, { format: 'rgb' });
              const written = await sharp(path.join(out, `p0.c${e.classIndex}.overlay.png`)).raw().toBuffer();
              assert.deepEqual(new Uint8Array(written), overlay.data);
            }
          }
        }
      }
    } finally {
      ex.dispose();
    }
    const gm = readNpy(path.join(out, 'gradcam.npy'));
    assert.deepEqual(gm.shape, [5, 32, 32]);
    maps.forEach((m, i) => assert.deepEqual(gm.data.subarray(i * 1024, (i + 1) * 1024), m));
    const gg = readNpy(path.join(out, 'guided-gradcam.npy'));
    assert.deepEqual(gg.shape, [5, 3, 32, 32]);
    guided.forEach((m, i) => assert.deepEqual(gg.data.subarray(i * 3072, (i + 1) * 3072), m));
    assert.deepEqual(fs.readdirSync(out).filter(isTempName), []);
  });
});
