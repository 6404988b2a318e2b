/**
 * End to end: a folder of 64 JPEGs to written pictures, `gradcam explain` against a PyTorch script
 * doing the same job the way pytorch-grad-cam's README does (scripts/e2e-torch.py: cv2.imread,
 * preprocess, the CAM, show_cam_on_image, cv2.imwrite), whole-process wall time, alternated in one
 * run, median of --runs. Also: what the model itself costs on those images (ORT forward+backward,
 * explain()'s gradientsMs) plus the PNG encoding of the same pictures, the floor our time is
 * compared with; and the split of our run from its --json timings.
 *
 *   npm run bench:e2e [-- --quick] [--runs=3] [--images=64] [--batch=8] [--python=/usr/bin/python3]
 *
 * The pictures: deterministic crops (70% of each side, offsets from the index) of
 * ../shared/images (cat, coffee, astronaut), JPEG quality 90, in os.tmpdir()/gradcam-e2e.
 * The model: bench/models/resnet18.onnx (torchvision resnet18, random weights, seed 0), exported
 * by scripts/export-bench-models.py when missing (Debian's python3-torch).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { createExplainer, encodePngs, getKernels, preprocessImages } from '../lib/index';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const MODEL = path.join(ROOT, 'bench', 'models', 'resnet18.onnx');
const TORCH = path.join(ROOT, 'scripts', 'e2e-torch.py');
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

interface Opts { runs: number; images: number; batch: number; python: string; quick: boolean; latency: boolean }

function parseArgs(): Opts {
  const o: Opts = { runs: 3, images: 64, batch: 8, python: process.env.GRADCAM_PYTHON ?? '/usr/bin/python3', quick: false, latency: false };
  for (const arg of process.argv.slice(2)) {
    const [k, v] = arg.replace(/^--/, '').split('=');
    if (k === 'quick') Object.assign(o, { quick: true, runs: 1, images: 16 });
    else if (k === 'latency') o.latency = true;
    else if (k === 'runs') o.runs = Number(v);
    else if (k === 'images') o.images = Number(v);
    else if (k === 'batch') o.batch = Number(v);
    else if (k === 'python') o.python = v;
    else throw new Error(`unknown option ${arg}`);
  }
  return o;
}

function sharedImages(): string {
  for (const d of [path.join(ROOT, '..', 'shared', 'images'), '/work/shared/images']) if (fs.existsSync(d)) return d;
  throw new Error('../shared/images not found');
}

async function makeFolder(n: number): Promise<string> {
  const dir = path.join(os.tmpdir(), 'gradcam-e2e', `jpegs-${n}`);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length === n) return dir;
  fs.mkdirSync(dir, { recursive: true });
  const src = ['chelsea.png', 'coffee.png', 'astronaut.png'].map((f) => path.join(sharedImages(), f));
  for (let i = 0; i < n; i++) {
    const f = src[i % 3];
    const m = await sharp(f).metadata();
    const w = Math.floor((m.width as number) * 0.7);
    const h = Math.floor((m.height as number) * 0.7);
    await sharp(f)
      .extract({ left: (i * 17) % ((m.width as number) - w), top: (i * 11) % ((m.height as number) - h), width: w, height: h })
      .jpeg({ quality: 90 })
      .toFile(path.join(dir, `img${String(i).padStart(3, '0')}.jpg`));
  }
  return dir;
}

function ensureModel(python: string): void {
  if (fs.existsSync(MODEL)) return;
  console.error(`exporting ${MODEL} ...`);
  const r = spawnSync(python, [path.join(ROOT, 'scripts', 'export-bench-models.py'), '--models', 'resnet18'], { stdio: 'inherit' });
  if (r.status !== 0 || !fs.existsSync(MODEL)) throw new Error('could not export resnet18.onnx (needs python3-torch, python3-torchvision)');
}

function timed(cmd: string, args: string[]): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** explain()'s gradient time on the folder (ORT forward + backward) and the PNG encoding of the run's pictures. */
async function floor(dir: string, method: string, batch: number): Promise<{ gradientsMs: number; pngMs: number }> {
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
  const ex = await createExplainer(MODEL, { executionProvider: 'cpu' });
  let gradientsMs = 0;
  let pngMs = 0;
  try {
    const first = await preprocessImages(files.slice(0, batch), { width: 224, height: 224, mean: MEAN, std: STD, layout: 'nchw' });
    await ex.explain(first.batch, { method: method as 'gradcam' }); // warm-up (sessions built)
    const perImage = method === 'guided-gradcam' ? 4 : 2;
    for (let s = 0; s < files.length; s += batch) {
      const { batch: b, images } = await preprocessImages(files.slice(s, s + batch), { width: 224, height: 224, mean: MEAN, std: STD, layout: 'nchw' });
      const r = await ex.explain(b, { method: method as 'gradcam' });
      gradientsMs += r.timings.gradientsMs;
      const n = images.length;
      const maps = new Float32Array(n * 224 * 224);
      r.explanations.forEach((e, i) => maps.set(e.map as Float32Array, i * 224 * 224));
      const rgb = getKernels('auto').sync.applyColormap(maps, n, 224, 224, 'jet');
      const t0 = performance.now();
      for (let k = 0; k < perImage; k++) await encodePngs(rgb, n, 224, 224, 3);
      pngMs += performance.now() - t0;
    }
  } finally {
    ex.dispose();
  }
  return { gradientsMs, pngMs };
}

/**
 * Batch-1 latency: explain() time minus the time inside ONNX Runtime's run (the runner's run(),
 * worker round trip included), i.e. the work around the model per call; median of 40 calls after 5.
 */
async function latency(dir: string): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const runtime = require('../lib/onnx/runtime') as typeof import('../lib/onnx/runtime');
  let ortMs = 0;
  for (const C of [runtime.WorkerRunner, runtime.InProcessRunner]) {
    const run = C.prototype.run;
    C.prototype.run = async function (this: unknown, feeds) {
      const t0 = performance.now();
      try {
        return await run.call(this, feeds);
      } finally {
        ortMs += performance.now() - t0;
      }
    } as typeof run;
  }
  const file = path.join(dir, fs.readdirSync(dir).sort()[0]);
  const { batch } = await preprocessImages([file], { width: 224, height: 224, mean: MEAN, std: STD, layout: 'nchw' });
  for (const method of ['gradcam', 'guided-gradcam'] as const) {
    const ex = await createExplainer(MODEL, { executionProvider: 'cpu' });
    const around: number[] = [];
    const total: number[] = [];
    const kernels: number[] = [];
    try {
      for (let i = 0; i < 45; i++) {
        ortMs = 0;
        const t0 = performance.now();
        const r = await ex.explain(batch, { method });
        const ms = performance.now() - t0;
        if (i >= 5) {
          kernels.push(r.timings.kernelsMs);
          total.push(ms);
          around.push(ms - ortMs);
        }
      }
    } finally {
      ex.dispose();
    }
    console.log(`batch-1 ${method}: explain ${median(total).toFixed(2)} ms, around the model (explain - ORT run) ${median(around).toFixed(2)} ms (goal < 3 ms: ${median(around) < 3 ? 'met' : 'NOT met'}), of which CAM kernels ${median(kernels).toFixed(2)} ms`);
  }
}

async function main(): Promise<void> {
  const o = parseArgs();
  ensureModel(o.python);
  if (o.latency) {
    await latency(await makeFolder(3));
    return;
  }
  const dir = await makeFolder(o.images);
  const outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-e2e-out-'));
  const methods = ['gradcam', 'guided-gradcam'];
  const ours: Record<string, number[]> = { gradcam: [], 'guided-gradcam': [] };
  const torch: Record<string, number[]> = { gradcam: [], 'guided-gradcam': [] };
  const splits: Record<string, Array<Record<string, number>>> = { gradcam: [], 'guided-gradcam': [] };
  const torchSplits: Record<string, Array<Record<string, number>>> = { gradcam: [], 'guided-gradcam': [] };
  console.log(`# e2e: ${o.images} JPEGs -> ResNet-18 ONNX (random weights) -> PNGs; batch ${o.batch}; median of ${o.runs}; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
  for (let run = 0; run < o.runs; run++) {
    for (const m of methods) {
      const out = path.join(outRoot, `ours-${m}-${run}`);
      const r = timed(process.execPath, [MAIN, 'explain', '--model', MODEL, '--input', dir, '--out', out, '--size', '224x224',
        '--mean', MEAN.join(','), '--std', STD.join(','), '--method', m, '--batch-size', String(o.batch), '--device', 'cpu', '--json', '--quiet']);
      ours[m].push(r.ms);
      splits[m].push(JSON.parse(r.stdout).timings);
      const tout = path.join(outRoot, `torch-${m}-${run}`);
      const p = timed(o.python, [TORCH, '--input', dir, '--out', tout, '--method', m, '--batch', String(o.batch)]);
      torch[m].push(p.ms);
      torchSplits[m].push(JSON.parse(p.stdout.trim().split('\n').pop() as string));
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(tout, { recursive: true, force: true });
    }
  }
  for (const m of methods) {
    const f = await floor(dir, m, o.batch);
    const us = median(ours[m]);
    const them = median(torch[m]);
    const split = splits[m][ours[m].indexOf(us)];
    const tsplit = torchSplits[m][torch[m].indexOf(them)];
    console.log(`\n## ${m}`);
    console.log(`ours (gradcam explain, whole process)   ${(us / 1000).toFixed(2)} s   runs ${ours[m].map((x) => (x / 1000).toFixed(2)).join(', ')}`);
    console.log(`PyTorch script (whole process)          ${(them / 1000).toFixed(2)} s   runs ${torch[m].map((x) => (x / 1000).toFixed(2)).join(', ')}`);
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`speed-up                                ${(them / us).toFixed(2)}x (goal >= 3x: ${met(them / us >= 3)})`);
    const fl = f.gradientsMs + f.pngMs;
    console.log(`floor: ORT fwd+bwd ${(f.gradientsMs / 1000).toFixed(2)} s + PNG encoding ${(f.pngMs / 1000).toFixed(2)} s = ${(fl / 1000).toFixed(2)} s; ours/floor ${(us / fl).toFixed(2)} (goal <= 1.25: ${met(us / fl <= 1.25)})`);
    console.log(`ours split (ms): ${Object.entries(split).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(`torch split (ms): ${Object.entries(tsplit).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  fs.rmSync(outRoot, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
