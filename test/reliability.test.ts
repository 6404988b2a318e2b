/**
 * Reliability: output files are whole at every instant (a run killed by SIGKILL at random times
 * leaves only complete, loadable files), the CLI's --json/--npy/report list exactly the images that
 * finished, stdout reaches a slow pipe reader in full, explainers free the models they load,
 * SharedArrayBuffer inputs, size limits, corrupt model files named, negative flag values, error codes.
 */
import * as assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { createExplainer } from '../lib/index';
import { ERROR_CODES, GradcamError, invalidRange, invalidType } from '../lib/errors';
import { decodeImage, parseNpy, preprocessImages, readNpy, writeNpy } from '../lib/image';
import { MAX_IMAGE_PIXELS } from '../lib/image/limits';
import { isTempName, removeStaleTemps, writeFileAtomic, writeFileAtomicSync } from '../lib/io/atomic';
import { joinNegativeNumbers, parseExplainArgs, UsageError } from '../lib/cli/args';
import type { Explainer, ExplainResult, InputBatch } from '../lib/types';
import { explainSkippingNonFinite } from '../lib/cam/nonfinite';
import { DataType, ModelProto, floatTensor, node as onnxNode, saveModel as saveOnnx } from '../lib/onnx/proto';
import { repoRoot } from './helpers/reference-data';
import { lcg, saveTinyTfjsModel } from './helpers/tiny-tfjs';

// GRADCAM_TEST_MAIN runs these tests against another build (e.g. the code before a fix)
const MAIN = process.env.GRADCAM_TEST_MAIN ?? path.resolve(__dirname, '../lib/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-rel-'));
const LABELS = ['red', 'green', 'blue'];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `gradcam ...` (or a shell line when `shell`), resolving on exit; `onSpawn` may kill it. */
function runAsync(args: string[], opts: { shell?: string; onSpawn?: (pid: number, kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<Run> {
  return opts.shell
    ? runChild('bash', ['-o', 'pipefail', '-c', opts.shell], { cwd: tmp }, opts.onSpawn)
    : runChild(process.execPath, [MAIN, ...args], { cwd: tmp }, opts.onSpawn);
}

/** Runs a child process to its exit, with its output. */
function runChild(cmd: string, args: string[], options: SpawnOptions = {}, onSpawn?: (pid: number, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...options, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(child.pid as number, (s) => child.kill(s));
  });
}

/** The tests' tiny model: the shared one, with a bias on conv2 and a sidecar for the CLI. */
function saveModel(dir: string, size: number, hidden = 0): Promise<string> {
  return saveTinyTfjsModel(dir, size, { hidden, conv2Bias: 0.05, sidecar: { size: [size, size], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], labels: LABELS } });
}

async function saveImages(dir: string, count: number, w = 24, h = 24): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const r = lcg(7);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const px = Buffer.alloc(w * h * 3);
    for (let p = 0; p < px.length; p++) px[p] = Math.floor(r() * 256);
    const f = path.join(dir, `img${String(i).padStart(3, '0')}.png`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(f);
    files.push(f);
  }
  return files;
}

/** A cheap look at a file with a final name: is it visibly incomplete (empty, no PNG end, .npy or report cut)? */
function looksPartial(file: string): boolean {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch {
    return false; // replaced or removed meanwhile
  }
  if (b.length === 0) return true;
  if (file.endsWith('.png')) return !b.subarray(Math.max(0, b.length - 12)).includes('IEND');
  if (file.endsWith('.html')) return !b.toString('latin1').endsWith('</html>\n');
  if (file.endsWith('.npy')) {
    try {
      parseNpy(b, file);
    } catch {
      return true;
    }
  }
  return false;
}

/**
 * Polls `dir` while a run goes on; calls `onPartial` as soon as a final-named file looks incomplete
 * (a non-atomic writer shows one between its open and its last write). Returns a stop function.
 */
function watchForPartial(dir: string, onPartial: (file: string) => void): () => void {
  const seen = new Map<string, string>();
  let stopped = false;
  const poll = () => {
    if (stopped) return;
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      /* not made yet */
    }
    for (const name of names) {
      if (isTempName(name)) continue;
      const file = path.join(dir, name);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        continue;
      }
      const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (seen.get(name) === key) continue;
      seen.set(name, key);
      if (looksPartial(file)) onPartial(file);
    }
    setTimeout(poll, 3);
  };
  poll();
  return () => {
    stopped = true;
  };
}

/** Every file in `dir` is whole: PNGs decode, .npy sizes match their headers, the report is closed. */
async function assertAllComplete(dir: string): Promise<{ png: number; temps: number }> {
  let png = 0;
  let temps = 0;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (isTempName(name)) {
      // a killed run's temporary: hidden, never with a final name's extension
      assert.ok(name.startsWith('.') && name.endsWith('.tmp'), name);
      temps++;
      continue;
    }
    if (name.endsWith('.png')) {
      const { info } = await sharp(file, { failOn: 'truncated' }).raw().toBuffer({ resolveWithObject: true }).catch((e) => {
        throw new Error(`${name} (${fs.statSync(file).size} bytes) does not decode: ${e.message}`);
      });
      assert.deepEqual([info.width, info.height], [16, 16], name);
      png++;
    } else if (name.endsWith('.npy')) {
      const bytes = fs.readFileSync(file);
      const arr = parseNpy(bytes, file);
      const headerEnd = 10 + bytes.readUInt16LE(8);
      assert.equal(bytes.length, headerEnd + 4 * arr.shape.reduce((a, b) => a * b, 1), `${name}: size matches its header`);
      assert.equal(arr.data.length, arr.shape.reduce((a, b) => a * b, 1));
    } else if (name === 'report.html') {
      assert.ok(fs.readFileSync(file, 'utf8').endsWith('</html>\n'), 'report.html is whole');
    } else {
      assert.fail(`unexpected file ${name}`);
    }
  }
  return { png, temps };
}

describe('reliability: atomic files', () => {
  const dir = path.join(tmp, 'atomic');
  before(() => fs.mkdirSync(dir, { recursive: true }));

  it('writeFileAtomic / writeFileAtomicSync write, replace, and leave no temporary', async () => {
    const f = path.join(dir, 'a.bin');
    await writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...fs.readFileSync(f)], [1, 2, 3]);
    await writeFileAtomic(f, [new Uint8Array([4]), new Uint8Array([5, 6])]);
    assert.deepEqual([...fs.readFileSync(f)], [4, 5, 6]);
    writeFileAtomicSync(f, 'text', { fsync: false });
    assert.equal(fs.readFileSync(f, 'utf8'), 'text');
    await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'x.bin'), 'x'), /ENOENT/);
    assert.deepEqual(fs.readdirSync(dir), ['a.bin']);
  });

  it('removeStaleTemps removes the temporaries of dead processes only', () => {
    const dead = path.join(dir, '.b.png.999999999-0011aabb.tmp');
    const mine = path.join(dir, `.c.png.${process.pid}-0011aabb.tmp`);
    fs.writeFileSync(dead, 'x');
    fs.writeFileSync(mine, 'x');
    assert.deepEqual(removeStaleTemps(dir), ['.b.png.999999999-0011aabb.tmp']);
    assert.ok(fs.existsSync(mine));
    fs.rmSync(mine);
  });
});

describe('reliability: gradcam explain outputs', function () {
  this.timeout(120000);
  let modelJson = '';
  let imgDir = '';

  before(async () => {
    modelJson = await saveModel(path.join(tmp, 'tiny'), 16);
    imgDir = path.join(tmp, 'imgs');
    await saveImages(imgDir, 12, 48, 48);
  });

  it('SIGKILL at random times: every file in the output folder is whole; a full run after lists everything', async function () {
    this.timeout(180000); // about 10 runs of the CLI: ~15 s on an idle 2-core machine
    const out = path.join(tmp, 'killed');
    const args = ['explain', '--model', modelJson, '-i', imgDir, '--out', out, '--engine', 'cpu', '--method', 'guided-gradcam', '--batch-size', '2', '--npy', '--report', '--json'];
    const t0 = Date.now();
    const first = await runAsync(args);
    const full = Date.now() - t0;
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).complete, true);
    await assertAllComplete(out);
    const r = lcg(20261202);
    let temps = 0;
    const partial: string[] = [];
    for (let k = 0; k < 8; k++) {
      // kill at a seeded time between 20% and 105% of a full run, or at once when a file with its
      // final name is seen incomplete (what a non-atomic writer shows between open and last write)
      const delay = Math.round(full * (0.2 + 0.85 * r()));
      let stop = () => undefined as void;
      const run = await runAsync(args, {
        onSpawn: (_pid, kill) => {
          const timer = setTimeout(() => kill('SIGKILL'), delay);
          stop = watchForPartial(out, (f) => {
            partial.push(path.basename(f));
            clearTimeout(timer);
            kill('SIGKILL');
          });
        },
      });
      stop();
      temps += (await assertAllComplete(out)).temps;
      if (run.signal === null) assert.equal(run.code, 0, run.stderr);
    }
    assert.deepEqual(partial, [], 'no file is ever visible half-written under its final name');
    const last = await runAsync(args);
    assert.equal(last.code, 0, last.stderr);
    const doc = JSON.parse(last.stdout);
    assert.equal(doc.complete, true);
    assert.deepEqual(doc.failures, []);
    const { png, temps: left } = await assertAllComplete(out);
    assert.equal(left, 0, `a full run removes stale temporaries (${temps} seen after kills)`);
    assert.equal(png, 12 * 4);
    assert.deepEqual(readNpy(path.join(out, 'gradcam.npy')).shape, [12, 16, 16]);
  });

  it('a picture that does not decode: complete false, failures listed, arrays and report hold exactly the rest, exit 1', async () => {
    const dir = path.join(tmp, 'mixed');
    fs.mkdirSync(dir);
    const good = (await saveImages(dir, 4)).map((f) => path.basename(f));
    fs.writeFileSync(path.join(dir, 'img001b.png'), Buffer.from('\x89PNG\r\n\x1a\n truncated', 'latin1'));
    const out = path.join(tmp, 'mixed-out');
    const run = await runAsync(['explain', '--model', modelJson, '-i', dir, '--out', out, '--engine', 'cpu', '--batch-size', '2', '--npy', '--report', '--json']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /gradcam: error: 1 of 5 input\(s\) failed; first: .*img001b\.png: cannot read image/);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.complete, false);
    assert.equal(doc.failures.length, 1);
    assert.equal(doc.failures[0].input, path.join(dir, 'img001b.png'));
    assert.equal(doc.failures[0].code, 'EIMAGE');
    assert.match(doc.failures[0].error, /cannot read image .*img001b\.png/);
    assert.deepEqual(doc.images.map((i: { input: string }) => path.basename(i.input)), good);
    assert.deepEqual(doc.images.map((i: { index: number }) => i.index), [0, 1, 3, 4]);
    assert.deepEqual(doc.images.map((i: { explained: Array<{ npyIndex: number }> }) => i.explained[0].npyIndex), [0, 1, 2, 3]);
    assert.deepEqual(readNpy(path.join(out, 'gradcam.npy')).shape, [4, 16, 16]);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<section /g) ?? []).length, 4);
    assert.match(html, /4 of 5, 1 failed/);
    await assertAllComplete(out);
  });

  it('a batch that fails after others finished: the run stops, the finished rows are written, complete false', async () => {
    const { batch } = await preprocessImages((await saveImages(path.join(tmp, 'npyimgs'), 2)), { width: 16, height: 16, layout: 'nhwc' });
    const okFile = path.join(tmp, 'a-ok.npy');
    const badFile = path.join(tmp, 'b-nan.npy');
    writeNpy(okFile, batch.data, batch.shape);
    const bad = batch.data.slice();
    bad[5] = NaN;
    writeNpy(badFile, bad, batch.shape);
    const out = path.join(tmp, 'nan-out');
    const run = await runAsync(['explain', '--model', modelJson, '-i', okFile, badFile, okFile, '--out', out, '--engine', 'cpu', '--batch-size', '2', '--npy', '--json', '--no-images']);
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.complete, false);
    assert.equal(doc.images.length, 2);
    assert.deepEqual(doc.failures.map((f: { input: string; code: string }) => [f.input, f.code]), [[`${badFile}[0]`, 'EARGRANGE'], [`${badFile}[1]`, 'EARGRANGE']]);
    assert.match(doc.failures[0].error, /finite values for input\.data/);
    assert.equal(doc.notRun, 2);
    assert.deepEqual(readNpy(path.join(out, 'gradcam.npy')).shape, [2, 16, 16]);
  });

  it('Ctrl-C: complete false, the arrays hold exactly the images in the JSON', async () => {
    const many = path.join(tmp, 'many');
    fs.mkdirSync(many);
    const src = fs.readdirSync(imgDir).map((f) => path.join(imgDir, f));
    for (let i = 0; i < 300; i++) fs.copyFileSync(src[i % src.length], path.join(many, `m${String(i).padStart(3, '0')}.png`));
    const out = path.join(tmp, 'sigint');
    const run = await runAsync(['explain', '--model', modelJson, '-i', many, '--out', out, '--engine', 'cpu', '--batch-size', '1', '--npy', '--report', '--json'], {
      onSpawn: (_pid, kill) => {
        const poll = setInterval(() => {
          if (fs.existsSync(out) && fs.readdirSync(out).some((f) => f.endsWith('.overlay.png'))) {
            clearInterval(poll);
            kill('SIGINT');
          }
        }, 10);
      },
    });
    assert.equal(run.code, 130, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.interrupted, true);
    assert.equal(doc.complete, false);
    assert.equal(doc.notRun, 300 - doc.images.length);
    assert.deepEqual(readNpy(path.join(out, 'gradcam.npy')).shape, [doc.images.length, 16, 16]);
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.overlay.png')).length, doc.images.length);
    await assertAllComplete(out);
  });
});

describe('reliability: stdout reaches a pipe in full', function () {
  this.timeout(120000);
  let modelJson = '';
  const inputs: Record<number, string> = {};

  before(async () => {
    modelJson = await saveModel(path.join(tmp, 'tiny-stdout'), 8);
    const r = lcg(3);
    for (const n of [80, 300, 1000]) {
      const data = Float32Array.from({ length: n * 8 * 8 * 3 }, () => r() * 2 - 1);
      inputs[n] = path.join(tmp, `rows${n}.npy`);
      writeNpy(inputs[n], data, [n, 8, 8, 3]);
    }
  });

  for (const n of [80, 300, 1000]) {
    for (const reader of ['fast', 'slow'] as const) {
      it(`--json of ${n} images through a ${reader} reader`, async () => {
        const file = path.join(tmp, `doc-${n}-${reader}.json`);
        const cmd = `"${process.execPath}" "${MAIN}" explain --model "${modelJson}" -i "${inputs[n]}" --out "${path.join(tmp, `so-${n}`)}" --engine cpu --no-images --batch-size 500 --json`;
        const consumer = reader === 'fast' ? `cat > "${file}"` : `(sleep 1; cat) > "${file}"`;
        const run = await runAsync([], { shell: `${cmd} | ${consumer}` });
        assert.equal(run.code, 0, run.stderr);
        const text = fs.readFileSync(file, 'utf8');
        assert.ok(text.length >= 64 * 1024 && text.length <= 1.6 * 1024 * 1024, `document of ${text.length} bytes`);
        const doc = JSON.parse(text);
        assert.equal(doc.images.length, n);
        assert.equal(doc.complete, true);
      });
    }
  }
});

describe('reliability: explainers free the models they load', function () {
  this.timeout(120000);

  it('50 createExplainer(model.json) / explain / dispose cycles: numTensors and RSS stay flat', async () => {
    // ~4 MB of weights (a 1536 x 640 dense layer): a leaked model per cycle would add 200 MB.
    // The cycles run in a child whose RSS means something: V8's young generation kept at its
    // smallest, and glibc's mmap threshold fixed (by default it rises after the first 4 MB block is
    // freed, so later ones stay in the malloc heap): neither is a leak, both move RSS by 10-20%.
    const modelJson = await saveModel(path.join(tmp, 'leak'), 16, 640);
    const child = path.join(__dirname, 'helpers', 'leak-cycles.js');
    // in this thread (workers: 0): a worker thread's model goes with its thread (test/tfjs.worker.test.ts)
    const r = await runChild(process.execPath, ['--expose-gc', '--max-semi-space-size=1', child, modelJson, '50', '0'], { env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' } });
    assert.equal(r.code, 0, r.stderr);
    const { tensors, rss } = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { tensors: number[]; rss: number[] };
    const warm = 14;
    assert.deepEqual(tensors.slice(warm), new Array(50 - warm).fill(tensors[warm]), `tensors per cycle: ${tensors.join(',')}`);
    assert.equal(tensors[49], 0, 'the loaded model is freed with the explainer');
    // a leaked model is 4 MB a cycle (144 MB over these 36); the allocator's own drift here is 2-5 MB
    // over 80 cycles with or without the library's changes (about 5% of a 75 MB process): bound 8 MB
    const grownMb = (Math.max(...rss.slice(warm)) - rss[warm]) / 2 ** 20;
    assert.ok(grownMb < 8, `RSS grew by ${grownMb.toFixed(1)} MB after warm-up (MB: ${rss.map((b) => (b / 2 ** 20).toFixed(0)).join(',')})`);
  });

  it('a model passed in stays the caller\'s: dispose() leaves it usable', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, activation: 'relu' }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
    const ex = await createExplainer(model, { engine: 'cpu' });
    ex.dispose();
    const y = tf.tidy(() => (model.predict(tf.ones([1, 8, 8, 3])) as tf.Tensor).dataSync());
    assert.equal(y.length, 2);
    model.dispose();
  });
});

describe('reliability: inputs and model files', function () {
  this.timeout(120000);
  let modelJson = '';
  let tfjsEx: Explainer | undefined;
  before(async () => {
    modelJson = await saveModel(path.join(tmp, 'tiny-inputs'), 16);
    tfjsEx = await createExplainer(modelJson, { engine: 'cpu' });
  });
  after(() => tfjsEx?.dispose());

  const shared = (a: Float32Array): Float32Array => {
    const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
    s.set(a);
    return s;
  };

  it('a Float32Array over a SharedArrayBuffer works on the tfjs adapter', async () => {
    const data = Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => Math.cos(i));
    const want = await (tfjsEx as Explainer).explain({ data, shape: [1, 16, 16, 3], layout: 'nhwc' }, { method: 'guided-gradcam' });
    const got = await (tfjsEx as Explainer).explain({ data: shared(data), shape: [1, 16, 16, 3], layout: 'nhwc' }, { method: 'guided-gradcam' });
    assert.deepEqual(got.explanations[0].map, want.explanations[0].map);
    assert.deepEqual(got.explanations[0].guidedMap, want.explanations[0].guidedMap);
  });

  for (const workers of [undefined, 0]) {
    it(`a Float32Array over a SharedArrayBuffer works on the ONNX adapter (workers: ${workers ?? 'default'})`, async () => {
      const file = path.join(repoRoot(), 'test', 'fixtures', 'onnx', 'misc_o11', 'model.onnx');
      const ex = await createExplainer(file, workers === undefined ? {} : { workers });
      try {
        const data = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i));
        const want = await ex.explain({ data, shape: [1, 3, 32, 32], layout: 'nchw' });
        const got = await ex.explain({ data: shared(data), shape: [1, 3, 32, 32], layout: 'nchw' });
        assert.deepEqual(got.explanations[0].map, want.explanations[0].map);
      } finally {
        ex.dispose();
      }
    });
  }

  it('preprocessing sizes are limited: 30000x30000 is refused at once, naming the arguments', async () => {
    const img = path.join(tmp, 'imgs', 'img000.png');
    const t0 = Date.now();
    const check = (e: unknown) => e instanceof RangeError && (e as RangeError & { code: string }).code === 'EARGRANGE'
      && e.message === `Expected width x height of at most ${MAX_IMAGE_PIXELS} pixels (4096x4096) but received 30000x30000 (900000000 pixels)`;
    await assert.rejects(preprocessImages([img], { width: 30000, height: 30000 }), check);
    await assert.rejects(decodeImage(img, 30000, 30000), check);
    await assert.rejects(decodeImage(img, 20000, 2), /Expected integer between 1 and 16384 for width but received 20000/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await decodeImage(img, 4096, 1)).rgb.length, 4096 * 3);
    assert.throws(() => parseExplainArgs(['-m', 'm', '-i', 'x', '--size', '30000x30000']), /--size must be at most 16384 pixels a side and 16777216 pixels \(4096x4096\) in all \(got '30000x30000'\)/);
  });

  it('a truncated model.json, truncated weights and a truncated .onnx: errors name the file', async () => {
    const dir = path.join(tmp, 'broken');
    fs.cpSync(path.dirname(modelJson), dir, { recursive: true });
    const json = path.join(dir, 'model.json');
    const text = fs.readFileSync(json, 'utf8');
    fs.writeFileSync(json, text.slice(0, text.length >> 1));
    await assert.rejects(createExplainer(json, { engine: 'cpu' }), (e: GradcamError) => e.code === 'EBADMODEL' && e.message.includes(json));
    fs.writeFileSync(json, text);
    const weights = path.join(dir, 'weights.bin');
    const w = fs.readFileSync(weights);
    fs.writeFileSync(weights, w.subarray(0, w.length - 8));
    await assert.rejects(createExplainer(json, { engine: 'cpu' }), (e: GradcamError) => e.code === 'EBADMODEL' && e.message.includes(json) && e.message.includes('weights.bin'));
    const onnx = fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'onnx', 'misc_o11', 'model.onnx'));
    for (const frac of [0.01, 0.5, 0.99]) {
      const f = path.join(dir, `cut-${frac}.onnx`);
      fs.writeFileSync(f, onnx.subarray(0, Math.floor(onnx.length * frac)));
      await assert.rejects(createExplainer(f), (e: GradcamError) => e.code === 'EBADMODEL' && e.message.includes(f), `cut at ${frac}`);
    }
    const cli = await runAsync(['explain', '-m', json.replace('model.json', 'cut-0.5.onnx'), '-i', path.join(tmp, 'imgs', 'img000.png'), '--size', '32x32']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /gradcam: error: .*cut-0\.5\.onnx is not an ONNX model/);
  });

  it("--class -1 parses and is refused naming --class; negative --mean values work", async () => {
    assert.throws(() => parseExplainArgs(['-m', 'm', '-i', 'x', '--class', '-1']), (e: Error) => e instanceof UsageError && e.message === "--class must be a class index of 0 or more, or 'argmax' (got '-1')");
    assert.throws(() => parseExplainArgs(['-m', 'm', '-i', 'x', '-c', '-1']), /--class must be a class index of 0 or more/);
    assert.throws(() => parseExplainArgs(['-m', 'm', '-i', 'x', '--top-k', '-2']), /--top-k must be a positive integer \(got '-2'\)/);
    assert.deepEqual(parseExplainArgs(['-m', 'm', '-i', 'x', '--mean', '-0.5,0,.5', '--std', '-.5']).mean, [-0.5, 0, 0.5]);
    assert.deepEqual(joinNegativeNumbers(['--class', '-1', '--npy', '-i', '-x.png', '--', '--class', '-2'], { class: { type: 'string', short: 'c' }, input: { type: 'string', short: 'i' }, npy: { type: 'boolean' } }),
      ['--class=-1', '--npy', '-i', '-x.png', '--', '--class', '-2']);
    const r = await runAsync(['explain', '-m', modelJson, '-i', 'x.png', '--class', '-1']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), "gradcam: --class must be a class index of 0 or more, or 'argmax' (got '-1')");
  });
});

/** Sets the last float32 of a tfjs model's weights.bin (the logits layer's last bias) to NaN. */
function poisonLastWeight(modelJson: string): void {
  const weights = path.join(path.dirname(modelJson), 'weights.bin');
  const w = fs.readFileSync(weights);
  w.writeFloatLE(NaN, w.length - 4);
  fs.writeFileSync(weights, w);
}

/** x [N,3,8,8] -> Conv(4, 3x3) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(3) with a NaN in the Gemm's weights. */
function nanWeightOnnx(file: string): string {
  const r = lcg(11);
  const rand = (len: number) => Array.from({ length: len }, () => r() - 0.5);
  const gemm = rand(4 * 3);
  gemm[5] = NaN;
  const model: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'gradcam-node test',
    graph: {
      name: 'nan-weight',
      node: [
        onnxNode('Conv', ['x', 'W'], ['conv'], 'conv', { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
        onnxNode('Relu', ['conv'], ['relu'], 'relu'),
        onnxNode('GlobalAveragePool', ['relu'], ['gap'], 'gap'),
        onnxNode('Flatten', ['gap'], ['flat'], 'flat', { axis: 1 }),
        onnxNode('Gemm', ['flat', 'G'], ['logits'], 'fc'),
      ],
      initializer: [floatTensor('W', [4, 3, 3, 3], rand(4 * 27)), floatTensor('G', [4, 3], gemm)],
      input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 8 }, { dimValue: 8 }] } } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
    },
  };
  fs.writeFileSync(file, saveOnnx(model));
  return file;
}

describe('reliability: non-finite results', function () {
  this.timeout(120000);
  const isNonFinite = (images: number[], what: RegExp) => (e: GradcamError & { images?: number[] }) => {
    assert.equal(e.code, 'ENONFINITE');
    assert.deepEqual(e.images, images);
    assert.match(e.message, what);
    return true;
  };

  it('explain() on a tfjs model with a NaN weight rejects with ENONFINITE naming the images', async () => {
    const modelJson = await saveModel(path.join(tmp, 'nan-tfjs'), 8);
    poisonLastWeight(modelJson);
    const ex = await createExplainer(modelJson, { engine: 'cpu' });
    try {
      const data = Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => Math.sin(i));
      await assert.rejects(ex.explain({ data, shape: [2, 8, 8, 3], layout: 'nhwc' }), isNonFinite([0, 1], /^Non-finite logits for images 0, 1: the model produced NaN or Infinity/));
    } finally {
      ex.dispose();
    }
  });

  it('explain() on an ONNX model with a NaN weight rejects with ENONFINITE naming the images', async () => {
    const ex = await createExplainer(nanWeightOnnx(path.join(tmp, 'nan-weight.onnx')));
    try {
      const data = Float32Array.from({ length: 2 * 3 * 8 * 8 }, (_, i) => Math.cos(i));
      await assert.rejects(ex.explain({ data, shape: [2, 3, 8, 8], layout: 'nchw' }), isNonFinite([0, 1], /^Non-finite logits for images 0, 1: /));
    } finally {
      ex.dispose();
    }
  });

  it('explain() names the one image whose finite input (3e38) overflows, with the layer or logits', async () => {
    const modelJson = await saveModel(path.join(tmp, 'overflow-tfjs'), 8);
    const ex = await createExplainer(modelJson, { engine: 'cpu' });
    try {
      const data = Float32Array.from({ length: 3 * 8 * 8 * 3 }, (_, i) => Math.sin(i));
      data.fill(3e38, 8 * 8 * 3, 2 * 8 * 8 * 3);
      await assert.rejects(ex.explain({ data, shape: [3, 8, 8, 3], layout: 'nhwc' }), isNonFinite([1], /^Non-finite (logits|.* at layer '\w+') for image 1\b/));
    } finally {
      ex.dispose();
    }
  });

  it('explainSkippingNonFinite: drops the named images and retries; one by one when the error names none', async () => {
    const batch: InputBatch = { data: Float32Array.from({ length: 4 * 2 }, (_, i) => i), shape: [4, 1, 1, 2], layout: 'nhwc' };
    const units = ['a', 'b', 'c', 'd'].map((name) => ({ name }));
    const displays = units.map(() => new Float32Array(1));
    const nonFinite = (images: number[]) => Object.assign(new GradcamError(`Non-finite gradient dY/dA at layer 'l' for image${images.length > 1 ? 's' : ''} ${images.join(', ')} (class ${images.map((i) => i + 5).join(', ')}): the model produced NaN`, 'ENONFINITE'), { images });
    // a row is bad when its first value is 2 or 6 (b and d); each call says which rows of what it was given
    const calls: number[][] = [];
    const explainRows = (names: boolean) => async (b: InputBatch) => {
      const firsts = Array.from({ length: b.shape[0] }, (_, i) => b.data[2 * i]);
      calls.push(firsts);
      const bad = firsts.flatMap((v, i) => (v === 2 || v === 6 ? [i] : []));
      if (bad.length) throw nonFinite(names ? bad : []);
      return { firsts } as unknown as ExplainResult;
    };
    const failed: Array<[string, string]> = [];
    const fail = (u: { name: string }, e: GradcamError) => failed.push([u.name, `${e.code} ${e.message}`]);
    const parts = await explainSkippingNonFinite(batch, units, displays, explainRows(true), fail);
    assert.deepEqual(calls, [[0, 2, 4, 6], [0, 4]]);
    assert.deepEqual(parts.map((p) => [p.units.map((u) => u.name), (p.result as unknown as { firsts: number[] }).firsts]), [[['a', 'c'], [0, 4]]]);
    assert.deepEqual(failed, [
      ['b', "ENONFINITE Non-finite gradient dY/dA at layer 'l' for b (class 6): the model produced NaN"],
      ['d', "ENONFINITE Non-finite gradient dY/dA at layer 'l' for d (class 8): the model produced NaN"],
    ]);
    calls.length = 0;
    failed.length = 0;
    const alone = await explainSkippingNonFinite(batch, units, displays, explainRows(false), fail);
    assert.deepEqual(calls, [[0, 2, 4, 6], [0], [2], [4], [6]]);
    assert.deepEqual(alone.map((p) => p.units[0].name), ['a', 'c']);
    assert.deepEqual(failed.map((f) => f[0]), ['b', 'd']);
    await assert.rejects(explainSkippingNonFinite(batch, units, displays, async () => { throw new GradcamError('other', 'EORT'); }, fail), /other/);
  });

  it('gradcam explain with a NaN-weight model: every image fails with ENONFINITE, named, exit 1, no pictures', async () => {
    const modelJson = await saveModel(path.join(tmp, 'nan-cli'), 16);
    poisonLastWeight(modelJson);
    const dir = path.join(tmp, 'nan-cli-imgs');
    const files = await saveImages(dir, 3);
    const out = path.join(tmp, 'nan-cli-out');
    const run = await runAsync(['explain', '--model', modelJson, '-i', dir, '--out', out, '--engine', 'cpu', '--batch-size', '2', '--npy', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.complete, false);
    assert.deepEqual(doc.images, []);
    assert.equal(doc.notRun, 0);
    assert.deepEqual(doc.failures.map((f: { input: string; code: string }) => [f.input, f.code]), files.map((f) => [f, 'ENONFINITE']));
    doc.failures.forEach((f: { input: string; error: string }) => assert.equal(f.error.split(':')[0], `Non-finite logits for ${f.input}`));
    for (const f of files) assert.ok(run.stderr.includes(`${f}: Non-finite logits for ${f}:`), run.stderr);
    assert.match(run.stderr, /gradcam: error: 3 of 3 input\(s\) failed/);
    assert.deepEqual(fs.readdirSync(out).filter((f) => !isTempName(f)), []);
  });

  it('gradcam explain: an input of 3e38 in one row of a batch fails alone; the others are written as without it', async () => {
    const modelJson = await saveModel(path.join(tmp, 'overflow-cli'), 16);
    const r = lcg(5);
    const row = 16 * 16 * 3;
    const data = Float32Array.from({ length: 3 * row }, () => r() * 2 - 1);
    const finite = new Float32Array(2 * row);
    finite.set(data.subarray(0, row), 0);
    finite.set(data.subarray(2 * row), row);
    data.fill(3e38, row, 2 * row);
    const badFile = path.join(tmp, 'overflow.npy');
    const okFile = path.join(tmp, 'overflow-ok.npy');
    writeNpy(badFile, data, [3, 16, 16, 3]);
    writeNpy(okFile, finite, [2, 16, 16, 3]);
    const out = path.join(tmp, 'overflow-out');
    const run = await runAsync(['explain', '--model', modelJson, '-i', badFile, '--out', out, '--engine', 'cpu', '--batch-size', '3', '--npy', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.complete, false);
    assert.deepEqual(doc.failures.map((f: { input: string; code: string }) => [f.input, f.code]), [[`${badFile}[1]`, 'ENONFINITE']]);
    assert.match(doc.failures[0].error, new RegExp(`^Non-finite .* for ${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\[1\\]`));
    assert.ok(run.stderr.includes(`gradcam: error: 1 of 3 input(s) failed; first: ${badFile}[1]: Non-finite`), run.stderr);
    assert.deepEqual(doc.images.map((i: { input: string; index: number }) => [i.input, i.index]), [[`${badFile}[0]`, 0], [`${badFile}[2]`, 2]]);
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.overlay.png')).length, 2);
    const outOk = path.join(tmp, 'overflow-ok-out');
    const ok = await runAsync(['explain', '--model', modelJson, '-i', okFile, '--out', outOk, '--engine', 'cpu', '--batch-size', '3', '--npy', '--json', '--no-images']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(fs.readFileSync(path.join(out, 'gradcam.npy')), fs.readFileSync(path.join(outOk, 'gradcam.npy')), 'the finite rows are explained as in a batch without the bad one');
  });
});

describe('reliability: error codes', () => {
  it('argument errors carry EARGTYPE / EARGRANGE', () => {
    assert.equal(invalidType('x', 'number', 'a').code, 'EARGTYPE');
    assert.equal(invalidRange('x', 'positive', -1).code, 'EARGRANGE');
  });

  it('an unknown method or layer, a disposed or 3-D tensor input: RangeErrors with EARGRANGE (EBADLAYER for the layer)', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ name: 'c', inputShape: [8, 8, 3], filters: 2, kernelSize: 3, activation: 'relu' }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
    const ex = await createExplainer(model, { engine: 'cpu' });
    const x: InputBatch = { data: new Float32Array(8 * 8 * 3), shape: [1, 8, 8, 3], layout: 'nhwc' };
    const coded = (name: RegExp, code = 'EARGRANGE') => (e: Error & { code?: string }) => e instanceof RangeError && e.code === code && name.test(e.message);
    try {
      await assert.rejects(ex.explain(x, { method: 'gradcam+' as never }), coded(/for method but received 'gradcam\+'/));
      await assert.rejects(ex.explain(x, { layer: 'd' }), coded(/for layer but received 'd'/, 'EBADLAYER'));
      const t = tf.zeros([1, 8, 8, 3]);
      t.dispose();
      await assert.rejects(ex.explain(t as never), coded(/for input but received a disposed tf\.Tensor/));
      const t3 = tf.zeros([8, 8, 3]);
      await assert.rejects(ex.explain(t3 as never), coded(/for input but received a tf\.Tensor of shape \[8,8,3\]/));
      t3.dispose();
    } finally {
      ex.dispose();
      model.dispose();
    }
  });

  it('the reliability battery of bad API arguments (bench/reliability.ts): every case an error with a code naming the argument', async function () {
    this.timeout(120000);
    const r = await runChild(process.execPath, [path.join(repoRoot(), 'dist', 'bench', 'reliability.js'), '--child', 'api', '--quick']);
    assert.equal(r.code, 0, r.stderr);
    const { tried, passed, failures } = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { tried: number; passed: number; failures: unknown[] };
    assert.deepEqual(failures, []);
    assert.equal(passed, tried);
    assert.ok(tried >= 100, `${tried} cases`);
  });

  it('every code the sources use is in ERROR_CODES', () => {
    const files: string[] = [];
    const walk = (d: string) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    });
    walk(path.join(repoRoot(), 'lib'));
    const used = new Set<string>();
    for (const f of files) {
      const src = fs.readFileSync(f, 'utf8');
      for (let i = src.indexOf('new GradcamError('); i >= 0; i = src.indexOf('new GradcamError(', i + 1)) {
        // the call's arguments (parentheses balanced), then its last quoted upper-case word: the code
        let depth = 0;
        let j = i + 'new GradcamError'.length;
        for (; j < src.length; j++) {
          if (src[j] === '(') depth++;
          else if (src[j] === ')' && --depth === 0) break;
        }
        const codes = [...src.slice(i, j).matchAll(/'([A-Z][A-Z_]+)'/g)].map((m) => m[1]);
        assert.ok(codes.length > 0, `${f}: a GradcamError without a literal code near offset ${i}`);
        used.add(codes[codes.length - 1]);
      }
      for (const m of src.matchAll(/\bcode: '([A-Z][A-Z_]+)'/g)) used.add(m[1]);
    }
    const unknown = [...used].filter((c) => !(c in ERROR_CODES));
    assert.deepEqual(unknown, [], 'codes missing from ERROR_CODES in lib/errors.ts');
    assert.ok(used.size >= 20);
  });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));
