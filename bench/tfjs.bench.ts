/**
 * tfjs adapter benchmark: images per second for Grad-CAM, Guided Backprop and Guided Grad-CAM on
 * nsfwjs's MobileNetV2 (224x224, the LayersModel shipped in the nsfwjs package), at batch 1 and 8,
 * on each installed engine (tfjs-node when installed, wasm, cpu), with the forward pass alone
 * (model.predict, what a user already pays to classify) measured in the same run.
 * A row's time is the median of --runs timed calls after one warm-up call; the explain calls
 * include everything the API does (forward, backward passes, CAM kernels, result assembly).
 *
 * Usage: node dist/bench/tfjs.bench.js [--json] [--engines=wasm,cpu] [--batches=1,8] [--runs=5]
 *        [--cpu-runs=2] [--methods=gradcam,guided-backprop,guided-gradcam]
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { createTfjsExplainer, loadTfjsModel, selectTfjsEngine } from '../lib/tfjs';
import type { TfjsEnginePreference } from '../lib/tfjs';
import type { Method } from '../lib/types';

interface Options {
  json: boolean;
  engines: TfjsEnginePreference[];
  batches: number[];
  runs: number;
  cpuRuns: number;
  methods: Method[];
}

function parseArgs(argv: string[]): Options {
  let hasNode = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    hasNode = false;
  }
  const o: Options = {
    json: false,
    engines: hasNode ? ['tfjs-node', 'wasm', 'cpu'] : ['wasm', 'cpu'],
    batches: [1, 8],
    runs: 5,
    cpuRuns: 2,
    methods: ['gradcam', 'guided-backprop', 'guided-gradcam'],
  };
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=');
    const list = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (key === '--json') o.json = true;
    else if (key === '--engines') o.engines = list as TfjsEnginePreference[];
    else if (key === '--batches') o.batches = list.map(Number);
    else if (key === '--runs') o.runs = Number(value);
    else if (key === '--cpu-runs') o.cpuRuns = Number(value);
    else if (key === '--methods') o.methods = list as Method[];
    else throw new Error(`unknown option ${arg}`);
  }
  return o;
}

function root(): string {
  return path.resolve(__dirname, '..', '..');
}

async function photos(n: number): Promise<Float32Array> {
  const files = ['chelsea.png', 'coffee.png', 'astronaut.png'].map((f) => path.join(root(), 'assets', 'images', f));
  const one = 224 * 224 * 3;
  const out = new Float32Array(n * one);
  for (let i = 0; i < n; i++) {
    const buf = await sharp(files[i % files.length]).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    for (let j = 0; j < one; j++) out[i * one + j] = buf[j] / 255;
  }
  return out;
}

async function median(runs: number, f: () => Promise<unknown> | unknown): Promise<number> {
  await f(); // warm-up
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

interface Row { engine: string; batch: number; task: string; ms: number; imagesPerSec: number }

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  process.env.GRADCAM_QUIET = process.env.GRADCAM_QUIET ?? '1';
  const modelFile = path.join(root(), 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2', 'model.min.js');
  const rows: Row[] = [];
  const maxBatch = Math.max(...o.batches);
  const data = await photos(maxBatch);
  for (const pref of o.engines) {
    let engine: string;
    try {
      engine = await selectTfjsEngine(pref);
    } catch (e) {
      if (!o.json) console.log(`skip ${pref}: ${(e as Error).message}`);
      continue;
    }
    const model = (await loadTfjsModel(modelFile)) as tf.LayersModel;
    const ex = await createTfjsExplainer(model, { engine: pref });
    const runs = pref === 'cpu' ? o.cpuRuns : o.runs;
    for (const n of o.batches) {
      const input = { data: data.subarray(0, n * 224 * 224 * 3), shape: [n, 224, 224, 3] as [number, number, number, number], layout: 'nhwc' as const };
      const tasks: Array<[string, () => Promise<unknown> | unknown]> = [
        ['forward (model.predict)', () => tf.tidy(() => (model.predict(tf.tensor4d(input.data, input.shape)) as tf.Tensor).dataSync())],
        ...o.methods.map((m): [string, () => Promise<unknown>] => [m, () => ex.explain(input, { method: m })]),
      ];
      for (const [task, f] of tasks) {
        const ms = await median(runs, f);
        const row = { engine, batch: n, task, ms, imagesPerSec: (1000 * n) / ms };
        rows.push(row);
        if (o.json) console.log(JSON.stringify({ type: 'result', model: 'nsfwjs-mobilenet_v2', ...row }));
        else console.error(`  ${engine} batch ${n} ${task}: ${ms.toFixed(0)} ms`);
      }
    }
    ex.dispose();
    model.dispose();
  }
  if (!o.json) {
    console.log('\nnsfwjs MobileNetV2 224x224, images/second (median of runs; explain = whole API call)\n');
    const tasks = [...new Set(rows.map((r) => r.task))];
    const header = ['engine', 'batch', ...tasks];
    const lines = [header];
    for (const engine of [...new Set(rows.map((r) => r.engine))]) {
      for (const n of o.batches) {
        const cells = tasks.map((t) => rows.find((r) => r.engine === engine && r.batch === n && r.task === t)?.imagesPerSec.toFixed(2) ?? '-');
        lines.push([engine, String(n), ...cells]);
      }
    }
    const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
    for (const l of lines) console.log(l.map((c, i) => c.padEnd(widths[i])).join('  '));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
