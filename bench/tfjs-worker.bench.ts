/**
 * tfjs in a worker thread vs in this thread: nsfwjs MobileNetV2 (224x224), Grad-CAM and Guided
 * Grad-CAM at one batch size, both explainers in the same process on the same engine, calls
 * alternated (worker, in-thread, worker, ...) after one warm-up call each. Per call: wall time and
 * the event-loop delay (perf_hooks.monitorEventLoopDelay, resolution 10 ms) while it ran.
 *
 * Usage: node dist/bench/tfjs-worker.bench.js [--batch=8] [--runs=3] [--methods=gradcam,guided-gradcam] [--json]
 */
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import sharp from 'sharp';
import { createTfjsExplainer, createTfjsExplainerOwning, loadTfjsModel, type TfjsModelExplainer } from '../lib/tfjs';
import type { InputBatch, Method } from '../lib/types';

const ROOT = path.resolve(__dirname, '../..');
const NSFW = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2', 'model.min.js');
const IMAGES = ['chelsea.png', 'coffee.png', 'astronaut.png'].map((f) => path.join(ROOT, 'assets', 'images', f));

function arg(name: string, def: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
}

async function batchOf(n: number): Promise<InputBatch> {
  const per = 224 * 224 * 3;
  const data = new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    const buf = await sharp(IMAGES[i % IMAGES.length]).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    for (let j = 0; j < per; j++) data[i * per + j] = buf[j] / 255;
  }
  return { data, shape: [n, 224, 224, 3], layout: 'nhwc' };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event-loop delay while `work` runs. The histogram's first timer tick only starts its clock,
 * so it is given two ticks before the work starts: explain() runs its first pass synchronously,
 * before it returns its promise, and that block must be counted.
 */
async function delayDuring(work: () => Promise<unknown>) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  await sleep(25); // (no reset(): it restarts that clock)
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  h.disable();
  return { ms, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

const timed = (ex: TfjsModelExplainer, input: InputBatch, method: Method) => delayDuring(() => ex.explain(input, { method }));

async function main(): Promise<void> {
  const n = Number(arg('batch', '8'));
  const runs = Number(arg('runs', '3'));
  const methods = arg('methods', 'gradcam,guided-gradcam').split(',') as Method[];
  const json = process.argv.includes('--json');
  const input = await batchOf(n);
  const model = await loadTfjsModel(NSFW);
  let t = performance.now();
  const worker = await createTfjsExplainerOwning(NSFW);
  const workerCreateMs = performance.now() - t;
  t = performance.now();
  const main = await createTfjsExplainer(model, { workers: 0 });
  const mainCreateMs = performance.now() - t;
  const rows: Array<{ method: Method; batch: number; engine: string; workerMs: number; mainMs: number; workerP99: number; workerMax: number; mainP99: number; mainMax: number; ratio: number }> = [];
  for (const method of methods) {
    await timed(worker, input, method);
    await timed(main, input, method);
    const w: Array<Awaited<ReturnType<typeof timed>>> = [];
    const m: typeof w = [];
    for (let r = 0; r < runs; r++) {
      w.push(await timed(worker, input, method));
      m.push(await timed(main, input, method));
    }
    const row = {
      method, batch: n, engine: worker.engine,
      workerMs: median(w.map((x) => x.ms)), mainMs: median(m.map((x) => x.ms)),
      workerP99: Math.max(...w.map((x) => x.p99)), workerMax: Math.max(...w.map((x) => x.max)),
      mainP99: Math.max(...m.map((x) => x.p99)), mainMax: Math.max(...m.map((x) => x.max)),
    };
    rows.push({ ...row, ratio: row.workerMs / row.mainMs });
  }
  worker.dispose();
  main.dispose();
  model.dispose();
  // the machine's own noise: the event-loop delay of an idle wait as long as a worker call
  const idle = await delayDuring(() => sleep(Math.max(...rows.map((r) => r.workerMs))));
  if (json) {
    console.log(JSON.stringify({ workerCreateMs, mainCreateMs, rows, idle }, null, 2));
    return;
  }
  console.log(`MobileNetV2 (nsfwjs) batch ${n}, ${runs} alternated runs after a warm-up, engine ${rows[0]?.engine}; create: worker ${workerCreateMs.toFixed(0)} ms, in-thread ${mainCreateMs.toFixed(0)} ms`);
  console.log('method          worker ms  in-thread ms  worker/in-thread  event-loop p99/max: worker     in-thread');
  for (const r of rows) {
    console.log(`${r.method.padEnd(15)} ${r.workerMs.toFixed(0).padStart(9)}  ${r.mainMs.toFixed(0).padStart(12)}  ${r.ratio.toFixed(2).padStart(16)}  ` +
      `${`${r.workerP99.toFixed(1)} / ${r.workerMax.toFixed(1)} ms`.padStart(26)}  ${`${r.mainP99.toFixed(0)} / ${r.mainMax.toFixed(0)} ms`.padStart(14)}`);
  }
  console.log(`idle wait of ${idle.ms.toFixed(0)} ms (the machine's own noise): event-loop p99/max ${idle.p99.toFixed(1)} / ${idle.max.toFixed(1)} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
