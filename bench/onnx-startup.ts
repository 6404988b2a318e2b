/**
 * Start-up time of `gradcam explain` with a cold and a warm model cache (lib/onnx/cache.ts):
 * time from process start (process.uptime) to the first gradient session run starting, and the
 * whole command's wall time. Runs alternate cold (empty --cache-dir), warm (the same folder, as
 * the cold run left it) and --no-cache, so load from other processes hits each alike; medians.
 *
 * Usage: node dist/bench/onnx-startup.js [--model=bench/models/resnet18.onnx] [--images=DIR] [--runs=3] [--method=gradcam] [--json]
 *   bench/models/resnet18.onnx: scripts/export-bench-models.py, or node dist/bench/resnet18-model.js
 *   --images: a folder of photos (default: 64 copies of assets/images in a temp folder)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** Preloaded into each run: prints the uptime at the first session run. */
export function hook(): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { OnnxGradientSession } = require(path.join(ROOT, 'dist/lib/onnx/session')) as { OnnxGradientSession: { prototype: { run: (...a: unknown[]) => unknown } } };
  // the first session's build (model cache lookup or gradient build, then the ORT session), alone
  const { OnnxAdapter } = require(path.join(ROOT, 'dist/lib/onnx/explainer')) as { OnnxAdapter: { prototype: { session: (...a: unknown[]) => Promise<unknown> } } };
  const session = OnnxAdapter.prototype.session;
  let firstSession = true;
  OnnxAdapter.prototype.session = async function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const s = await session.apply(this, args);
    if (firstSession) {
      firstSession = false;
      process.stderr.write(`\nSESSION_MS=${(performance.now() - t0).toFixed(0)}\n`);
    }
    return s;
  };
  const run = OnnxGradientSession.prototype.run;
  let first = true;
  OnnxGradientSession.prototype.run = function (this: unknown, ...args: unknown[]) {
    if (first) {
      first = false;
      process.stderr.write(`\nFIRST_RUN_MS=${(process.uptime() * 1000).toFixed(0)}\n`);
    }
    return run.apply(this, args);
  };
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
if (process.env.GRADCAM_STARTUP_HOOK === '1' && require.main !== module && require('node:worker_threads').isMainThread) hook();

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main(): void {
  const arg = (k: string, d: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3) ?? d;
  const model = path.resolve(arg('model', path.join(ROOT, 'bench/models/resnet18.onnx')));
  const runs = Number(arg('runs', '3'));
  const method = arg('method', 'gradcam');
  const json = process.argv.includes('--json');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-startup-'));
  let images = arg('images', '');
  if (!images) {
    images = path.join(tmp, 'photos');
    fs.mkdirSync(images);
    const src = fs.readdirSync(path.join(ROOT, 'assets/images')).filter((f) => f.endsWith('.png'));
    for (let i = 0; i < 64; i++) fs.copyFileSync(path.join(ROOT, 'assets/images', src[i % src.length]), path.join(images, `p${String(i).padStart(2, '0')}.png`));
  }
  const cacheDir = path.join(tmp, 'cache');
  const one = (flags: string[]) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['-r', __filename, path.join(ROOT, 'dist/lib/cli/main.js'), 'explain', '-m', model, '-i', images,
      '--method', method, '--device', 'cpu', '-q', '--no-images', '-o', path.join(tmp, 'out'), ...flags],
    { encoding: 'utf8', env: { ...process.env, GRADCAM_STARTUP_HOOK: '1', GRADCAM_QUIET: '1' } });
    const wall = performance.now() - t0;
    const m = /FIRST_RUN_MS=(\d+)/.exec(r.stderr);
    const sm = /SESSION_MS=(\d+)/.exec(r.stderr);
    if (r.status !== 0 || !m || !sm) throw new Error(`gradcam explain failed (${r.status}): ${r.stderr}`);
    return { firstRunMs: Number(m[1]), sessionMs: Number(sm[1]), wallMs: Math.round(wall) };
  };
  const res: Record<string, Array<{ firstRunMs: number; sessionMs: number; wallMs: number }>> = { cold: [], warm: [], noCache: [] };
  for (let i = 0; i < runs; i++) {
    fs.rmSync(cacheDir, { recursive: true, force: true });
    res.cold.push(one(['--cache-dir', cacheDir]));
    res.warm.push(one(['--cache-dir', cacheDir]));
    res.noCache.push(one(['--no-cache']));
    if (!json) console.error(`round ${i + 1}: ${JSON.stringify({ cold: res.cold[i], warm: res.warm[i], noCache: res.noCache[i] })}`);
  }
  const med = (k: string, f: 'firstRunMs' | 'sessionMs' | 'wallMs') => median(res[k].map((x) => x[f]));
  const summary = {
    model: path.relative(ROOT, model), method, runs, load: os.loadavg()[0].toFixed(1),
    firstRunMs: { cold: med('cold', 'firstRunMs'), warm: med('warm', 'firstRunMs'), noCache: med('noCache', 'firstRunMs') },
    sessionMs: { cold: med('cold', 'sessionMs'), warm: med('warm', 'sessionMs'), noCache: med('noCache', 'sessionMs') },
    wallMs: { cold: med('cold', 'wallMs'), warm: med('warm', 'wallMs'), noCache: med('noCache', 'wallMs') },
    warmOverCold: +(med('warm', 'firstRunMs') / med('cold', 'firstRunMs')).toFixed(3),
    warmOverNoCache: +(med('warm', 'firstRunMs') / med('noCache', 'firstRunMs')).toFixed(3),
    sessionWarmOverNoCache: +(med('warm', 'sessionMs') / med('noCache', 'sessionMs')).toFixed(3),
    raw: res,
  };
  console.log(JSON.stringify(summary, null, json ? 0 : 2));
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (require.main === module) main();
