/**
 * The `gradcam` command run as a child process (node dist/lib/cli/main.js) on a tiny tfjs
 * LayersModel made here, plus one ONNX run against ../shared/reference when it is there.
 * Checks every flag, the files and shapes written, --npy arrays equal to the API's, --json,
 * Ctrl-C, and one-line errors for bad flags.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../lib/arrays';
import { createExplainer } from '../lib/index';
import type { Explainer, Explanation } from '../lib/types';
import { preprocessImages, readNpy, showCamOnImage, writeNpy } from '../lib/image';
import { parseExplainArgs, parseSize, UsageError } from '../lib/cli/args';
import { Progress } from '../lib/cli/progress';
import { expandInputs, loadSidecar, readLabels, uniqueStems } from '../lib/cli/inputs';
import { NO_REFERENCE, skipBecause } from './helpers/skip';
import { METHODS, outputNamesOf } from '../lib/cam/methods';
import { referenceDir } from './helpers/reference-data';

const MAIN = path.resolve(__dirname, '../lib/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-cli-'));
const modelDir = path.join(tmp, 'tiny');
const modelJson = path.join(modelDir, 'model.json');
const imgDir = path.join(tmp, 'imgs');
const LABELS = ['red', 'green', 'blue'];
const SIDE = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', cwd: os.tmpdir(), timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr + (r.signal ? `\n[killed by ${r.signal}]` : '') + (r.error ? `\n[${r.error.message}]` : '') };
}

function runJson(args: string[]): { r: Run; doc: Record<string, any> } {
  const r = run([...args, '--json']);
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return { r, doc: JSON.parse(r.stdout) };
}

/** A 16x16x3 -> conv(4) -> conv(6) -> GAP -> dense(3, softmax) tfjs LayersModel with fixed weights. */
async function makeTinyModel(): Promise<void> {
  fs.mkdirSync(modelDir, { recursive: true });
  const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed });
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ name: 'conv1', inputShape: [16, 16, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), biasInitializer: 'zeros' }));
  model.add(tf.layers.conv2d({ name: 'conv2', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), biasInitializer: tf.initializers.constant({ value: 0.05 }) }));
  model.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  model.add(tf.layers.dense({ name: 'logits', units: 3, activation: 'softmax', kernelInitializer: init(3) }));
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      fs.writeFileSync(path.join(modelDir, 'weights.bin'), Buffer.from(data));
      fs.writeFileSync(modelJson, JSON.stringify({ format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  fs.writeFileSync(path.join(modelDir, 'gradcam.json'), JSON.stringify({ size: [16, 16], ...SIDE, labels: LABELS }));
}

async function makeImages(): Promise<string[]> {
  fs.mkdirSync(imgDir, { recursive: true });
  const files: string[] = [];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 255;
  for (let i = 0; i < 3; i++) {
    const w = 20 + i * 4;
    const h = 24;
    const px = Buffer.alloc(w * h * 3);
    for (let p = 0; p < px.length; p++) px[p] = rnd();
    const f = path.join(imgDir, `img${i}.png`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(f);
    files.push(f);
  }
  fs.writeFileSync(path.join(imgDir, 'notes.txt'), 'not an image');
  return files;
}

function concat(list: Explanation[], key: 'map' | 'inputGradient' | 'guidedMap'): Float32Array {
  return concatFloat32(list.map((e) => e[key] as Float32Array));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function assertOneLineError(r: Run, pattern: RegExp, code?: number): void {
  assert.notEqual(r.code, 0, 'exit code must be non-zero');
  if (code !== undefined) assert.equal(r.code, code);
  const lines = r.stderr.split('\n').filter((l) => l.trim().length > 0 && !l.startsWith('gradcam-node:') && !l.startsWith('sidecar: ') && !/TensorFlow\.js|tfjs-node|^=+$/.test(l));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0], /^gradcam: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '');
}

describe('cli: argument parsing (in process)', () => {
  it('parses every explain flag', () => {
    const a = parseExplainArgs(['--model', 'm.onnx', '--input', 'a.png', 'b.png', '--layer', 'L', '--method', 'guided-gradcam', '--top-k', '3', '--counterfactual', '--out', 'o', '--npy', '--json', '--colormap', 'turbo', '--alpha', '0.25', '--device', 'js', '--engine', 'cpu', '--batch-size', '4', '--size', '32x24', '--mean', '0.1,0.2,0.3', '--std', '0.5', '--layout', 'nhwc', '--report', '--labels', 'l.txt', '--verbose', '--guided-relu6', '--no-images', '--quiet']);
    assert.deepEqual(a.inputs, ['a.png', 'b.png']);
    assert.equal(a.method, 'guided-gradcam');
    assert.equal(a.topK, 3);
    assert.equal(a.classIndex, undefined);
    assert.deepEqual(a.size, { width: 32, height: 24 });
    assert.deepEqual(a.mean, [0.1, 0.2, 0.3]);
    assert.deepEqual(a.std, [0.5]);
    assert.equal(a.alpha, 0.25);
    assert.equal(a.batchSize, 4);
    assert.equal(a.images, false);
    assert.equal(a.layout, 'nhwc');
    for (const k of ['counterfactual', 'npy', 'json', 'report', 'verbose', 'guidedRelu6', 'quiet'] as const) assert.equal(a[k], true, k);
    assert.equal(parseExplainArgs(['-m', 'x', '-i', 'y', '--class', '2']).classIndex, 2);
    assert.equal(parseExplainArgs(['-m', 'x', '-i', 'y', '--class', 'argmax']).classIndex, undefined);
    assert.deepEqual(parseSize('224'), { width: 224, height: 224 });
    assert.throws(() => parseExplainArgs(['-m', 'x', '-i', 'y', '--class', '1', '--top-k', '2']), UsageError);
  });

  it('reads the sidecar next to the model (<model>.gradcam.json first), labels files, input lists', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-sidecar-'));
    try {
      const model = path.join(dir, 'net.onnx');
      fs.writeFileSync(model, '');
      assert.deepEqual(loadSidecar(model), {});
      fs.writeFileSync(path.join(dir, 'names.txt'), 'cat\ndog\n');
      fs.writeFileSync(path.join(dir, 'gradcam.json'), JSON.stringify({ size: '8x4', layout: 'nhwc' }));
      assert.deepEqual(loadSidecar(model), { file: path.join(dir, 'gradcam.json'), width: 8, height: 4, layout: 'nhwc', mean: undefined, std: undefined });
      fs.writeFileSync(`${model}.gradcam.json`, JSON.stringify({ size: [32, 16], mean: 0.5, std: [0.1, 0.2, 0.3], labels: 'names.txt', channels: 1, pixelScale: 1, layer: 'L' }));
      const s = loadSidecar(model);
      assert.equal(s.file, `${model}.gradcam.json`);
      assert.deepEqual([s.width, s.height, s.mean, s.std, s.labels, s.channels, s.pixelScale, s.layer], [32, 16, [0.5], [0.1, 0.2, 0.3], ['cat', 'dog'], 1, 1, 'L']);
      fs.writeFileSync(`${model}.gradcam.json`, '{ not json');
      assert.throws(() => loadSidecar(model), (e: Error) => e instanceof UsageError && e.message.startsWith(`cannot read sidecar ${model}.gradcam.json`));
      fs.writeFileSync(`${model}.gradcam.json`, JSON.stringify({ layout: 'chw' }));
      assert.throws(() => loadSidecar(model), /'layout' must be 'nchw' or 'nhwc'/);
      fs.writeFileSync(path.join(dir, 'l.json'), JSON.stringify({ 0: 'a', 2: 'c' }));
      assert.deepEqual(readLabels(path.join(dir, 'l.json')), ['a', '1', 'c']); // a missing index is named by its number
      fs.writeFileSync(path.join(dir, 'b.PNG'), '');
      fs.writeFileSync(path.join(dir, 'a.jpg'), '');
      assert.deepEqual(expandInputs([dir]).map((i) => path.basename(i.file)), ['a.jpg', 'b.PNG']);
      assert.throws(() => expandInputs([path.join(dir, 'x.npy'), dir]), /input not found/);
      assert.deepEqual(uniqueStems(['a/cat.png', 'b/cat.jpg', 'my photo.png']), ['cat', 'cat-2', 'my_photo']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('draws a progress bar only on a terminal and for more than a few items', () => {
    const written: string[] = [];
    const fake = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const p = new Progress(10, 'images', fake);
    for (let i = 0; i < 10; i++) p.tick();
    p.finish();
    assert.match(written.join(''), /\[#{24}\] 10\/10 images/);
    const quiet: string[] = [];
    const few = new Progress(3, 'images', { isTTY: true, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream);
    few.tick(3);
    const pipe = new Progress(10, 'images', { isTTY: false, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream);
    pipe.tick(10);
    assert.deepEqual(quiet, []);
  });
});

describe('cli: gradcam explain / layers on a tiny tfjs model', function () {
  this.timeout(120000);
  let images: string[] = [];
  let api: Explainer;

  before(async () => {
    await makeTinyModel();
    images = await makeImages();
    api = await createExplainer(modelJson, { engine: 'cpu' });
  });
  after(() => {
    api?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('explains a directory: one JSON document, overlay + heatmap per image, sidecar labels', async () => {
    const out = path.join(tmp, 'o1');
    const { doc } = runJson(['explain', '--model', modelJson, '--input', imgDir, '--out', out, '--engine', 'cpu']);
    assert.equal(doc.method, 'gradcam');
    assert.equal(doc.engine, 'tfjs-cpu');
    assert.ok(['js', 'cpu', 'cuda'].includes(doc.device));
    assert.equal(doc.layer, api.defaultLayer);
    assert.equal(doc.images.length, 3);
    assert.equal(doc.interrupted, false);
    for (const t of ['totalMs', 'explainMs', 'loadModelMs', 'gradientsMs', 'kernelsMs']) assert.equal(typeof doc.timings[t], 'number');
    for (const img of doc.images) {
      assert.equal(img.top.length, 3);
      assert.ok(LABELS.includes(img.top[0].label));
      assert.ok(img.top[0].probability >= img.top[1].probability);
      assert.equal(img.explained.length, 1);
      const e = img.explained[0];
      assert.equal(e.classIndex, img.top[0].classIndex); // argmax
      assert.equal(e.label, LABELS[e.classIndex]);
      assert.equal(e.score, e.logit);
      assert.deepEqual(Object.keys(e.files).sort(), ['heatmap', 'overlay']);
      for (const f of Object.values(e.files) as string[]) {
        const meta = await sharp(f).metadata();
        assert.equal(meta.format, 'png');
        assert.deepEqual([meta.width, meta.height], [16, 16]);
      }
    }
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.png')).length, 6);
  });

  it('every registered method runs through the CLI and writes the files the registry names', () => {
    for (const m of METHODS) {
      const out = path.join(tmp, `method-${m.name}`);
      const { doc } = runJson(['explain', '-m', modelJson, '-i', images[0], '--method', m.name, '--npy', '--engine', 'cpu', '-o', out]);
      const names = outputNamesOf(m, false);
      assert.equal(doc.method, m.name);
      assert.deepEqual(Object.keys(doc.npy).sort(), [names.map, names.inputGradient, names.guidedMap].filter(Boolean).map((x) => x!.stem).sort(), m.name);
      for (const [stem, v] of Object.entries(doc.npy) as Array<[string, { file: string; shape: number[] }]>) {
        assert.equal(path.basename(v.file), `${stem}.npy`);
        const arr = readNpy(v.file);
        assert.deepEqual(arr.shape, v.shape);
        assert.ok(arr.data.every(Number.isFinite), `${m.name}: ${stem}.npy finite`);
      }
      const files = doc.images[0].explained[0].files as Record<string, string>;
      if (names.map) assert.ok(files.overlay.endsWith('.overlay.png') && fs.existsSync(files.heatmap), m.name);
      if (names.inputGradient) assert.ok(files.inputGradient.endsWith(`.${names.inputGradient.stem}.png`), m.name);
      if (names.guidedMap) assert.ok(files.guidedMap.endsWith(`.${names.guidedMap.stem}.png`), m.name);
      if (m.name === 'saliency') assert.ok(files.saliencyMax.endsWith('.saliency-max.png'));
      for (const f of Object.values(files)) assert.ok(fs.statSync(f).size > 100, f);
    }
  });

  it('--guided, --aug-smooth, --eigen-smooth and a repeated --layer reach the API', () => {
    const out = path.join(tmp, 'options');
    const { doc } = runJson(['explain', '-m', modelJson, '-i', images[1], '--method', 'gradcam++', '--guided', '--aug-smooth',
      '--layer', 'conv1', '--layer', 'conv2', '--npy', '--engine', 'cpu', '-o', out]);
    assert.deepEqual(doc.layers, ['conv1', 'conv2']);
    assert.equal(doc.guided, true);
    assert.deepEqual(Object.keys(doc.npy).sort(), ['gradcam++', 'guided-backprop', 'guided-gradcam++']);
    const r2 = runJson(['explain', '-m', modelJson, '-i', images[1], '--eigen-smooth', '--engine', 'cpu', '-o', path.join(tmp, 'eigen')]);
    assert.equal(r2.doc.images[0].explained.length, 1);
  });

  it('--npy --method guided-gradcam --top-k 2 --layout nchw: arrays equal the API, files per class', async () => {
    const out = path.join(tmp, 'o2');
    const { doc } = runJson(['explain', '--model', modelJson, '-i', ...images, '--out', out, '--engine', 'cpu', '--method', 'guided-gradcam', '--top-k', '2', '--npy', '--layout', 'nchw', '--batch-size', '2']);
    const { batch } = await preprocessImages(images, { width: 16, height: 16, ...SIDE, layout: 'nchw' });
    const ref = await api.explain(batch, { method: 'guided-gradcam', targets: { topK: 2 } });
    const maps = readNpy(path.join(out, 'gradcam.npy'));
    const gb = readNpy(path.join(out, 'guided-backprop.npy'));
    const gg = readNpy(path.join(out, 'guided-gradcam.npy'));
    assert.deepEqual(maps.shape, [6, 16, 16]);
    assert.deepEqual(gb.shape, [6, 3, 16, 16]);
    assert.deepEqual(gg.shape, [6, 3, 16, 16]);
    assert.ok(maxAbsDiff(maps.data, concat(ref.explanations, 'map')) < 1e-5);
    assert.ok(maxAbsDiff(gb.data, concat(ref.explanations, 'inputGradient')) < 1e-5);
    assert.ok(maxAbsDiff(gg.data, concat(ref.explanations, 'guidedMap')) < 1e-5);
    assert.deepEqual(doc.npy.gradcam.shape, [6, 16, 16]);
    doc.images.forEach((img: any, i: number) => {
      assert.equal(img.explained.length, 2);
      img.explained.forEach((e: any, r: number) => {
        assert.equal(e.npyIndex, i * 2 + r);
        assert.equal(e.classIndex, ref.explanations[i * 2 + r].classIndex);
        assert.deepEqual(Object.keys(e.files).sort(), ['guidedMap', 'heatmap', 'inputGradient', 'overlay']);
        assert.ok(e.files.guidedMap.endsWith(`img${i}.c${e.classIndex}.guided-gradcam.png`));
      });
    });
  });

  it('--class, --counterfactual, --colormap, --alpha: overlay bytes equal show_cam_on_image of the written map', async () => {
    const out = path.join(tmp, 'o3');
    const { doc } = runJson(['explain', '--model', modelJson, '-i', images[0], '--out', out, '--engine', 'cpu', '--class', '1', '--counterfactual', '--colormap', 'viridis', '--alpha', '0.3', '--npy']);
    const e = doc.images[0].explained[0];
    assert.equal(e.classIndex, 1);
    assert.equal(doc.counterfactual, true);
    assert.ok(Math.abs(e.score + e.logit) < 1e-6, 'counterfactual score is the negated logit');
    assert.ok(e.files.overlay.endsWith('img0.c1.cf.overlay.png'));
    const map = readNpy(path.join(out, 'gradcam.npy')).data;
    const { images: decoded } = await preprocessImages([images[0]], { width: 16, height: 16 });
    const want = showCamOnImage(decoded[0].rgb, map, 16, 16, { colormap: 'viridis', alpha: 0.3 });
    const got = await sharp(e.files.overlay).raw().toBuffer();
    assert.deepEqual([...got], [...want]);
    const { batch } = await preprocessImages([images[0]], { width: 16, height: 16, ...SIDE, layout: 'nhwc' });
    const ref = await api.explain(batch, { targets: 1, counterfactual: true });
    assert.ok(maxAbsDiff(map, ref.explanations[0].map as Float32Array) < 1e-5);
  });

  it('--size, --mean, --std override the sidecar; --labels file; --method guided-backprop', async () => {
    const out = path.join(tmp, 'o4');
    const labels = path.join(tmp, 'labels.txt');
    fs.writeFileSync(labels, 'cat\ndog\nbird\n');
    const { doc } = runJson(['explain', '--model', modelJson, '-i', images[1], '--out', out, '--engine', 'cpu', '--size', '16x16', '--mean', '0', '--std', '1,1,1', '--labels', labels, '--method', 'guided-backprop', '--npy']);
    const gb = readNpy(path.join(out, 'guided-backprop.npy'));
    assert.deepEqual(gb.shape, [1, 16, 16, 3]); // the model's layout (nhwc)
    const { batch } = await preprocessImages([images[1]], { width: 16, height: 16, layout: 'nhwc' });
    const ref = await api.explain(batch, { method: 'guided-backprop' });
    assert.ok(maxAbsDiff(gb.data, ref.explanations[0].inputGradient as Float32Array) < 1e-6);
    assert.ok(['cat', 'dog', 'bird'].includes(doc.images[0].explained[0].label));
    assert.deepEqual(Object.keys(doc.images[0].explained[0].files), ['inputGradient']);
    assert.equal(fs.existsSync(path.join(out, 'gradcam.npy')), false);
  });

  it('a .npy input tensor is used as is (its shape gives N and the layout)', async () => {
    const { batch } = await preprocessImages(images.slice(0, 2), { width: 16, height: 16, ...SIDE, layout: 'nhwc' });
    const npyIn = path.join(tmp, 'batch.npy');
    writeNpy(npyIn, batch.data, batch.shape);
    const out = path.join(tmp, 'o5');
    const { doc } = runJson(['explain', '--model', modelJson, '-i', npyIn, '--out', out, '--engine', 'cpu', '--npy', '--report']);
    assert.equal(doc.images.length, 2);
    assert.equal(doc.images[1].input, `${npyIn}[1]`);
    const ref = await api.explain(batch, {});
    assert.ok(maxAbsDiff(readNpy(path.join(out, 'gradcam.npy')).data, concat(ref.explanations, 'map')) < 1e-5);
    assert.ok(fs.existsSync(path.join(out, 'batch_0.c' + ref.explanations[0].classIndex + '.overlay.png')));
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 2 * 2);
  });

  it('--batch-size, --device js, --guided-relu6, --no-images, --quiet, --verbose', async () => {
    const out = path.join(tmp, 'o6');
    const { doc } = runJson(['explain', '--model', modelJson, '-i', imgDir, '--out', out, '--engine', 'cpu', '--device', 'js', '--batch-size', '1', '--guided-relu6', '--no-images', '--npy', '--verbose']);
    assert.equal(doc.device, 'js');
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.png')).length, 0);
    const { batch } = await preprocessImages(images, { width: 16, height: 16, ...SIDE, layout: 'nhwc' });
    const ref = await api.explain(batch, {});
    assert.ok(maxAbsDiff(readNpy(path.join(out, 'gradcam.npy')).data, concat(ref.explanations, 'map')) < 1e-5, 'batch size 1 equals one batch of 3');
    const q = run(['explain', '--model', modelJson, '-i', images[0], '--out', path.join(tmp, 'o7'), '--engine', 'cpu', '--quiet']);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, '');
    const plain = run(['explain', '--model', modelJson, '-i', images[0], '--out', path.join(tmp, 'o8'), '--engine', 'cpu']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /img0\.png: (red|green|blue) \(\d\) p=/);
    assert.match(plain.stdout, /1 image\(s\) in [\d.]+ s/);
  });

  it('--device cuda either runs on CUDA or fails with one line', () => {
    const r = run(['explain', '--model', modelJson, '-i', images[0], '--out', path.join(tmp, 'o9'), '--engine', 'cpu', '--device', 'cuda', '--json']);
    if (r.code === 0) assert.equal(JSON.parse(r.stdout).device, 'cuda');
    else assertOneLineError(r, /cuda|CUDA/i, 1);
  });

  it('gradcam layers lists the 4-D layers with shapes and marks the default', () => {
    const r = run(['layers', '--model', modelJson, '--engine', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    const marked = r.stdout.split('\n').filter((l) => l.startsWith('*'));
    assert.equal(marked.length, 1);
    assert.match(marked[0], new RegExp(`^\\* ${api.defaultLayer}\\s`));
    assert.match(r.stdout, /conv1\s+\S+\s+\[\?,16,16,4\]|conv1.*\[.*16,16,4\]/);
    const j = run(['layers', '--model', modelJson, '--json', '--engine', 'cpu']);
    const doc = JSON.parse(j.stdout);
    assert.equal(doc.defaultLayer, api.defaultLayer);
    assert.equal(doc.layers.filter((l: any) => l.isDefault).length, 1);
  });

  it('Ctrl-C stops after the current batch, keeps what was written, exits 130', async () => {
    const many = path.join(tmp, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < 400; i++) fs.copyFileSync(images[i % 3], path.join(many, `m${String(i).padStart(3, '0')}.png`));
    const out = path.join(tmp, 'o10');
    const child = spawn(process.execPath, [MAIN, 'explain', '--model', modelJson, '-i', many, '--out', out, '--engine', 'cpu', '--batch-size', '1', '--npy', '--json'], { cwd: tmp });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', () => undefined);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // wait for the first picture, then interrupt
    const t0 = Date.now();
    while (!(fs.existsSync(out) && fs.readdirSync(out).some((f) => f.endsWith('.overlay.png')))) {
      if (Date.now() - t0 > 30000) throw new Error('no output within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130);
    const doc = JSON.parse(stdout);
    assert.equal(doc.interrupted, true);
    const done = doc.images.length;
    assert.ok(done > 0 && done < 400, `processed ${done}`);
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.overlay.png')).length, done);
    assert.deepEqual(readNpy(path.join(out, 'gradcam.npy')).shape, [done, 16, 16]);
  });

  describe('bad flags: non-zero exit, one line on stderr, no stack trace', () => {
    const cases: Array<[string, string[], RegExp, number]> = [
      ['unknown flag', ['explain', '--bogus'], /Unknown option '--bogus'/, 2],
      ['missing --model', ['explain', '-i', 'x.png'], /missing --model/, 2],
      ['missing --input', ['explain', '--model', 'm.onnx'], /missing --input/, 2],
      ['bad --method', ['explain', '-m', 'm', '-i', 'x', '--method', 'scorecam'], /--method must be one of gradcam, gradcam\+\+, xgradcam, .*, guided-backprop, guided-gradcam \(got 'scorecam'\)/, 2],
      ['bad --class', ['explain', '-m', 'm', '-i', 'x', '--class', 'cat'], /--class must be a class index/, 2],
      ['bad --top-k', ['explain', '-m', 'm', '-i', 'x', '--top-k', '0'], /--top-k must be a positive integer \(got '0'\)/, 2],
      ['bad --alpha', ['explain', '-m', 'm', '-i', 'x', '--alpha', '1.5'], /--alpha must be a number between 0 and 1/, 2],
      ['bad --colormap', ['explain', '-m', 'm', '-i', 'x', '--colormap', 'hot'], /--colormap must be one of jet, turbo, viridis/, 2],
      ['bad --device', ['explain', '-m', 'm', '-i', 'x', '--device', 'tpu'], /--device must be one of auto, cuda, cpu, js/, 2],
      ['bad --batch-size', ['explain', '-m', 'm', '-i', 'x', '--batch-size', '-1'], /--batch-size/, 2],
      ['bad --size', ['explain', '-m', 'm', '-i', 'x', '--size', 'big'], /--size must be WIDTHxHEIGHT/, 2],
      ['bad --mean', ['explain', '-m', 'm', '-i', 'x', '--mean', '1,2'], /--mean must be one number or three/, 2],
      ['zero --std', ['explain', '-m', 'm', '-i', 'x', '--std', '0,1,1'], /--std must not contain 0/, 2],
      ['bad --layout', ['explain', '-m', 'm', '-i', 'x', '--layout', 'chw'], /--layout must be one of nchw, nhwc/, 2],
      ['--class with --top-k', ['explain', '-m', 'm', '-i', 'x', '--class', '1', '--top-k', '2'], /cannot be used together/, 2],
      ['unknown command', ['explian'], /unknown command 'explian'/, 2],
      ['input not found', ['explain', '-m', 'm.onnx', '-i', 'nope.png'], /input not found: nope\.png/, 2],
    ];
    for (const [name, args, pattern, code] of cases) {
      it(name, () => assertOneLineError(run(args), pattern, code));
    }

    it('model not found', () => assertOneLineError(run(['explain', '-m', 'missing.onnx', '-i', images[0]]), /model not found: missing\.onnx/, 2));

    it('a class index out of range is the library RangeError, exit 1', () => {
      assertOneLineError(run(['explain', '-m', modelJson, '-i', images[0], '--out', path.join(tmp, 'e1'), '--engine', 'cpu', '--class', '9']), /^gradcam: error: Expected integer class index in \[0, 2\] for --class but received 9/, 1);
    });

    it('an unknown layer names the flag value, exit 1', () => {
      assertOneLineError(run(['explain', '-m', modelJson, '-i', images[0], '--out', path.join(tmp, 'e2'), '--engine', 'cpu', '--layer', 'nope']), /layer.*'nope'/, 1);
    });

    it('a size the model cannot take, exit 1', () => {
      assertOneLineError(run(['explain', '-m', modelJson, '-i', images[0], '--out', path.join(tmp, 'e3'), '--engine', 'cpu', '--size', '20x12']), /^gradcam: error: /, 1);
    });

    it('--verbose adds the stack trace', () => {
      const r = run(['explain', '-m', modelJson, '-i', images[0], '--out', path.join(tmp, 'e4'), '--engine', 'cpu', '--class', '9', '--verbose']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^gradcam: error: /m);
      assert.match(r.stderr, /\n\s+at /);
    });

    it('no command prints the usage and exits 2; --help exits 0', () => {
      const r = run([]);
      assert.equal(r.code, 2);
      assert.match(r.stdout, /Usage:/);
      const h = run(['explain', '--help']);
      assert.equal(h.code, 0);
      for (const flag of ['--model', '--input', '--layer', '--method', '--class', '--top-k', '--counterfactual', '--out', '--npy', '--json', '--colormap', '--alpha', '--device', '--batch-size', '--size', '--mean', '--std', '--layout', '--report', '--labels', '--verbose']) {
        assert.ok(h.stdout.includes(flag), `help mentions ${flag}`);
      }
    });
  });
});

const refDir = fs.existsSync(path.join(referenceDir(), 'models', 'smallvgg.onnx')) ? referenceDir() : undefined;

describe('cli: ONNX model against pytorch-grad-cam (../shared/reference smallvgg)', function () {
  this.timeout(120000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-cli-onnx-'));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('--npy gradcam / guided arrays and the deprocessed Guided Grad-CAM picture equal the reference', async function () {
    if (!refDir) skipBecause(this, NO_REFERENCE);
    const dir = refDir as string;
    const b = fs.readFileSync(path.join(dir, 'inputs', 'b1.bin'));
    const x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    const npyIn = path.join(out, 'b1.npy');
    writeNpy(npyIn, x, [1, 3, 224, 224]);
    const r = run(['explain', '--model', path.join(dir, 'models', 'smallvgg.onnx'), '-i', npyIn, '--out', out, '--method', 'guided-gradcam', '--npy', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.match(doc.engine, /^onnxruntime/);
    const ref = (name: string) => {
      const buf = fs.readFileSync(path.join(dir, 'outputs', 'smallvgg', 'b1', 'argmax', name));
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    };
    const maps = readNpy(path.join(out, 'gradcam.npy'));
    assert.deepEqual(maps.shape, [1, 224, 224]);
    assert.ok(maxAbsDiff(maps.data, ref('gradcam.lib.final.bin')) < 1e-3);
    const gb = readNpy(path.join(out, 'guided-backprop.npy'));
    assert.deepEqual(gb.shape, [1, 3, 224, 224]);
    const rgb = ref('guided_backprop.lib.bin');
    const scale = rgb.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbsDiff(gb.data, rgb) / scale < 1e-3);
    // the picture: deprocess_image of Guided Grad-CAM, compared byte for byte (a float-rounding tie may flip a few by 1)
    const png = await sharp(doc.images[0].explained[0].files.guidedMap).raw().toBuffer();
    const want = fs.readFileSync(path.join(dir, 'outputs', 'smallvgg', 'b1', 'argmax', 'guided_gradcam.lib.deprocessed.bin'));
    const hw = 224 * 224;
    let off = 0;
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < hw; i++) {
        const d = Math.abs(png[i * 3 + ch] - want[ch * hw + i]);
        assert.ok(d <= 1, `pixel ${i} channel ${ch} differs by ${d}`);
        if (d) off++;
      }
    }
    assert.ok(off <= 3 * hw * 0.001, `${off} bytes differ by 1`);
  });
});

describe('cli: gradcam demo (npm run demo)', function () {
  this.timeout(180000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-demo-'));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  // speed is measured by the benchmarks, not here (this machine's timings vary several-fold with load)
  it('explains the packaged pretrained models on the bundled photos', async () => {
    const r = spawnSync(process.execPath, [MAIN, 'demo', '--out', out, '--json'], { encoding: 'utf8', cwd: os.tmpdir(), timeout: 170000 });
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.runs.length, 2);
    const [nsfw, emotion] = doc.runs;
    assert.deepEqual(nsfw.images.map((i: any) => path.basename(i.input)), ['chelsea.png', 'coffee.png']);
    for (const img of nsfw.images) {
      assert.equal(img.explained.length, 2);
      assert.ok(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'].includes(img.explained[0].label));
      for (const f of Object.values(img.explained[0].files) as string[]) assert.ok(fs.statSync(f).size > 500, f);
    }
    assert.equal(emotion.images[0].explained[0].label, 'happy', 'Eileen Collins smiles');
    for (const f of ['report.html', 'strips/chelsea-mobilenet-v2.jpg', 'strips/coffee-mobilenet-v2.jpg', 'strips/astronaut-face-emotion.jpg']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<img /g) ?? []).length, 3 * 5);
  });
});
