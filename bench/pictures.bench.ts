/**
 * Picture benchmark: a batch of 32 demo-like pictures (224x224: the photos of assets/ blended with
 * CAM-like maps, bilinear upsamplings of random 7x7 maps), rendered as the end-to-end job does.
 *
 * Rows (each: median of --rounds rounds of at least --max-time/rounds seconds; ms per batch):
 *   overlay     showCamOnImage of the batch: 'ts-per-image' (lib/image showCamOnImage, image by
 *               image, the path before the picture kernels), 'ts' (the twin, one call), 'native-cpu'
 *               (sync), 'native-cpu-async' (the Promise API), 'native-cuda' when there is a GPU
 *   colormap    applyColormap of the 32 maps
 *   deprocess   deprocessImage of 32 guided outputs [3,224,224] (nchw)
 *   png-serial / png-parallel   encode the 32 overlays, one await after the other / all at once
 *               (encodePngs; sharp on libuv's pool), at the default compression level
 *   end-to-end  renderOverlays (kernel + parallel PNGs) against renderOverlay image by image
 * With --png-levels: PNG size and encode time of the 32 overlays at every zlib level 0..9.
 *
 * Usage: node dist/bench/pictures.bench.js [--json] [--png-levels] [--max-time=1] [--rounds=5] [--n=32]
 */

import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

import { DEFAULT_PNG_COMPRESSION, decodeImage, encodePngs, renderOverlay, renderOverlays, showCamOnImage } from '../lib/image';
import { getKernels, kernelInfo } from '../lib/kernels';
import { reference } from '../lib/kernels/reference';
import { rng } from '../test/helpers/random';

interface Options {
  json: boolean;
  pngLevels: boolean;
  maxTime: number;
  rounds: number;
  n: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, pngLevels: false, maxTime: 1, rounds: 5, n: 32 };
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=');
    if (key === '--json') o.json = true;
    else if (key === '--png-levels') o.pngLevels = true;
    else if (key === '--max-time') o.maxTime = Number(value);
    else if (key === '--rounds') o.rounds = Math.max(1, Math.floor(Number(value)) || 1);
    else if (key === '--n') o.n = Math.max(1, Math.floor(Number(value)) || 1);
    else {
      console.log('usage: pictures.bench [--json] [--png-levels] [--max-time=s] [--rounds=5] [--n=32]');
      process.exit(key === '--help' ? 0 : 2);
    }
  }
  return o;
}

const H = 224;
const W = 224;


interface Inputs {
  images: Float32Array;
  maps: Float32Array;
  guided: Float32Array;
}

async function inputs(n: number): Promise<Inputs> {
  const root = path.resolve(__dirname, '../..');
  const files = ['assets/images/astronaut.png', 'assets/images/chelsea.png', 'assets/demo/astronaut-face-emotion.jpg', 'assets/demo/chelsea-mobilenet-v2.jpg', 'assets/demo/coffee-mobilenet-v2.jpg']
    .map((f) => path.join(root, f))
    .filter((f) => fs.existsSync(f));
  const r = rng(1);
  const images = new Float32Array(n * H * W * 3);
  for (let b = 0; b < n; b++) {
    if (files.length) images.set((await decodeImage(fs.readFileSync(files[b % files.length]), W, H)).rgb, b * H * W * 3);
    else for (let i = 0; i < H * W * 3; i++) images[b * H * W * 3 + i] = r();
  }
  const low = Float32Array.from({ length: n * 49 }, () => r());
  const maps = reference.minMaxNormalize(reference.resizeBilinear(reference.minMaxNormalize(low, n, 49), n, 7, 7, H, W), n, H * W);
  const guided = Float32Array.from({ length: n * 3 * H * W }, () => (r() - 0.5) * 0.01);
  return { images, maps, guided };
}

interface Row {
  type: 'result';
  case: string;
  backend: string;
  n: number;
  msPerBatch: number;
  bestMsPerBatch: number;
  samples: number;
}

/** Interleaved rounds over the backends of one case; a row gives the median round and the best sample. */
async function measure(name: string, n: number, backends: [string, () => unknown][], o: Options): Promise<Row[]> {
  const perRound = (o.maxTime / o.rounds) * 1000;
  const rounds = new Map<string, number[]>(backends.map(([b]) => [b, []]));
  const best = new Map<string, number>();
  let samples = 0;
  for (const [, fn] of backends) await fn(); // warm up
  for (let round = 0; round < o.rounds; round++) {
    for (const [b, fn] of backends) {
      const t0 = performance.now();
      let count = 0;
      let elapsed = 0;
      do {
        const s = performance.now();
        await fn();
        const dt = performance.now() - s;
        best.set(b, Math.min(best.get(b) ?? Infinity, dt));
        count++;
        elapsed = performance.now() - t0;
      } while (elapsed < perRound);
      rounds.get(b)!.push(elapsed / count);
      samples += count;
    }
  }
  return backends.map(([b]) => {
    const list = rounds.get(b)!.sort((x, y) => x - y);
    return { type: 'result', case: name, backend: b, n, msPerBatch: +list[list.length >> 1].toFixed(3), bestMsPerBatch: +best.get(b)!.toFixed(3), samples };
  });
}

async function pngLevels(rgb: Uint8Array, n: number, o: Options): Promise<void> {
  const size = H * W * 3;
  for (const adaptiveFiltering of [false, true]) {
    for (let level = 0; level <= 9; level++) {
      const encode = (b: number) => sharp(Buffer.from(rgb.buffer, rgb.byteOffset + b * size, size), { raw: { width: W, height: H, channels: 3 } })
        .png({ compressionLevel: level, adaptiveFiltering })
        .toBuffer();
      let bytes = 0;
      const c0 = process.cpuUsage();
      for (let b = 0; b < n; b++) bytes += (await encode(b)).length;
      const cpu = process.cpuUsage(c0);
      const [serial, parallel] = await measure(`png-level-${level}`, n, [
        ['serial', async () => { for (let b = 0; b < n; b++) await encode(b); }],
        ['parallel', () => Promise.all(Array.from({ length: n }, (_, b) => encode(b)))],
      ], o);
      const row = {
        type: 'png-level',
        level,
        adaptiveFiltering,
        meanKiB: +(bytes / n / 1024).toFixed(1),
        ratioToRaw: +(bytes / (n * size)).toFixed(3),
        cpuMsPerImage: +((cpu.user + cpu.system) / 1000 / n).toFixed(2),
        serialMsPerImage: +(serial.msPerBatch / n).toFixed(2),
        parallelMsPerImage: +(parallel.msPerBatch / n).toFixed(2),
      };
      console.log(o.json ? JSON.stringify(row) : `level ${level}${adaptiveFiltering ? ' adaptive' : ''}: ${row.meanKiB} KiB (${row.ratioToRaw} of raw), cpu ${row.cpuMsPerImage} ms/image, wall ${row.serialMsPerImage} ms/image serial, ${row.parallelMsPerImage} parallel`);
    }
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const n = o.n;
  const info = kernelInfo();
  const { images, maps, guided } = await inputs(n);
  const hw = H * W;
  const rows: Row[] = [];
  const native = info.native.loaded;
  const cuda = native && info.native.cuda.available;
  const cpu = native ? getKernels('cpu') : undefined;
  const gpu = cuda ? getKernels('cuda') : undefined;
  const header = { type: 'info', n, size: `${H}x${W}`, native, cuda: info.native.cuda.reason, uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)', pngLevel: DEFAULT_PNG_COMPRESSION };
  console.log(o.json ? JSON.stringify(header) : header);

  const overlay: [string, () => unknown][] = [
    ['ts-per-image', () => { for (let b = 0; b < n; b++) showCamOnImage(images.subarray(b * hw * 3, (b + 1) * hw * 3), maps.subarray(b * hw, (b + 1) * hw), W, H); }],
    ['ts', () => reference.showCamOnImage(images, maps, n, H, W)],
  ];
  if (cpu) overlay.push(['native-cpu', () => cpu.sync.showCamOnImage(images, maps, n, H, W)], ['native-cpu-async', () => cpu.async.showCamOnImage(images, maps, n, H, W)]);
  if (gpu) overlay.push(['native-cuda', () => gpu.sync.showCamOnImage(images, maps, n, H, W)]);
  rows.push(...(await measure('overlay', n, overlay, o)));

  const colormap: [string, () => unknown][] = [['ts', () => reference.applyColormap(maps, n, H, W, 'jet')]];
  if (cpu) colormap.push(['native-cpu', () => cpu.sync.applyColormap(maps, n, H, W, 'jet')]);
  if (gpu) colormap.push(['native-cuda', () => gpu.sync.applyColormap(maps, n, H, W, 'jet')]);
  rows.push(...(await measure('colormap', n, colormap, o)));

  const deprocess: [string, () => unknown][] = [['ts', () => reference.deprocessImage(guided, n, 3, H, W, 'nchw')]];
  if (cpu) deprocess.push(['native-cpu', () => cpu.sync.deprocessImage(guided, n, 3, H, W, 'nchw')]);
  if (gpu) deprocess.push(['native-cuda', () => gpu.sync.deprocessImage(guided, n, 3, H, W, 'nchw')]);
  rows.push(...(await measure('deprocess', n, deprocess, o)));

  const rgb = reference.showCamOnImage(images, maps, n, H, W);
  rows.push(...(await measure('png', n, [
    ['serial', async () => { for (let b = 0; b < n; b++) await encodePngs(rgb.subarray(b * hw * 3, (b + 1) * hw * 3), 1, W, H, 3); }],
    ['parallel', () => encodePngs(rgb, n, W, H, 3)],
  ], o)));

  rows.push(...(await measure('end-to-end-png', n, [
    ['renderOverlay-per-image', async () => { for (let b = 0; b < n; b++) await renderOverlay(images.subarray(b * hw * 3, (b + 1) * hw * 3), maps.subarray(b * hw, (b + 1) * hw), W, H); }],
    ['renderOverlays-batch', () => renderOverlays(images, maps, n, W, H)],
  ], o)));

  for (const r of rows) console.log(o.json ? JSON.stringify(r) : `${r.case.padEnd(16)} ${r.backend.padEnd(24)} ${r.msPerBatch.toFixed(2).padStart(9)} ms/batch (best ${r.bestMsPerBatch.toFixed(2)})`);
  // the ratios of the issue: TS twin vs native CPU, serial vs parallel PNG
  const ms = (c: string, b: string) => rows.find((r) => r.case === c && r.backend === b)?.msPerBatch;
  const ratio = (c: string, slow: string, fast: string) => {
    const a = ms(c, slow);
    const b = ms(c, fast);
    return a && b ? +(a / b).toFixed(2) : null;
  };
  const goal = {
    type: 'ratios',
    overlayTsOverNativeCpu: ratio('overlay', 'ts', 'native-cpu'),
    overlayTsPerImageOverNativeCpu: ratio('overlay', 'ts-per-image', 'native-cpu'),
    colormapTsOverNativeCpu: ratio('colormap', 'ts', 'native-cpu'),
    deprocessTsOverNativeCpu: ratio('deprocess', 'ts', 'native-cpu'),
    pngSerialOverParallel: ratio('png', 'serial', 'parallel'),
    endToEndPerImageOverBatch: ratio('end-to-end-png', 'renderOverlay-per-image', 'renderOverlays-batch'),
  };
  console.log(o.json ? JSON.stringify(goal) : goal);
  if (o.pngLevels) await pngLevels(rgb, n, o);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
