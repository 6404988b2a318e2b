/**
 * ONNX benchmark: images/second of, in the same process and with the same ORT thread settings,
 *   forward          a plain onnxruntime-node InferenceSession on the original model (the ceiling)
 *   gradcam          createOnnxExplainer(...).explain({ method: 'gradcam' })  (short backward)
 *   guided-backprop  explain({ method: 'guided-backprop' })                  (full backward)
 *   guided-gradcam   explain({ method: 'guided-gradcam' })                   (both, one session run)
 * on ResNet-18 and ResNet-50 (bench/models, made by scripts/export-bench-models.py) and the
 * reference models smallvgg and mobilenet_v2 (../shared/reference/models), at batch 1 and 8.
 * Median of --runs timed runs after --warmup untimed ones (the first builds the sessions); the
 * methods' runs are interleaved, so load from other processes hits every column alike.
 *
 * The goals of the ONNX issue are checked for ResNet-18/50 at batch 8 (against pytorch-grad-cam on
 * this kind of 2-core machine: ../shared/reference/README.md).
 *
 * Usage: node dist/bench/onnx.bench.js [--json] [--runs=5] [--warmup=1] [--models=resnet18,resnet50,smallvgg,mobilenet_v2]
 *        [--batches=1,8] [--methods=forward,gradcam,guided-backprop,guided-gradcam] [--threads=N]
 *        [--profile[=DIR]]
 *   --json     one JSON object per line (type 'result', then type 'goal')
 *   --profile  run each generated model (Grad-CAM and Guided Grad-CAM sessions) once more under ORT's
 *              profiler and print where the time goes: per op type, and the slowest nodes, split
 *              into forward (the model's own nodes) and backward (the generated 'gradcam/...' nodes)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createOnnxExplainer, listOnnxLayers } from '../lib/onnx';
import { buildGradientModel } from '../lib/onnx/backward';
import { loadModel, saveModel } from '../lib/onnx/proto';
import type { Explainer, InputBatch, Method } from '../lib/types';
import { repoRoot } from '../test/helpers/reference-data';

type Column = 'forward' | Method;
const COLUMNS: readonly Column[] = ['forward', 'gradcam', 'guided-backprop', 'guided-gradcam'];

interface Options {
  json: boolean; runs: number; warmup: number; models: string[]; batches: number[];
  methods: Column[]; threads: number; profile?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    json: false, runs: 5, warmup: 1, models: ['resnet18', 'resnet50', 'smallvgg', 'mobilenet_v2'], batches: [1, 8],
    methods: [...COLUMNS], threads: os.availableParallelism?.() ?? os.cpus().length,
  };
  const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    switch (key) {
      case '--json': o.json = true; break;
      case '--runs': o.runs = Math.max(1, Number(value)); break;
      case '--warmup': o.warmup = Math.max(0, Number(value)); break;
      case '--models': o.models = list(value); break;
      case '--batches': o.batches = list(value).map(Number); break;
      case '--methods': o.methods = list(value) as Column[]; break;
      case '--threads': o.threads = Number(value); break;
      case '--profile': o.profile = value || path.join(os.tmpdir(), 'gradcam-onnx-profile'); break;
      default:
        console.error(`unknown option ${arg}`);
        process.exit(2);
    }
  }
  for (const m of o.methods) {
    if (!COLUMNS.includes(m)) { console.error(`unknown method ${m} (one of ${COLUMNS.join(', ')})`); process.exit(2); }
  }
  if (o.batches.some((b) => !Number.isInteger(b) || b < 1)) { console.error('--batches: positive integers'); process.exit(2); }
  if (!Number.isInteger(o.threads) || o.threads < 1) { console.error('--threads: a positive integer'); process.exit(2); }
  return o;
}

// ---------------------------------------------------------------------------------------------
// models

const ROOT = repoRoot();
const SHARED = process.env.GRADCAM_SHARED ?? path.join(ROOT, '..', 'shared');

function modelPath(name: string): string {
  if (name.startsWith('resnet')) return path.join(ROOT, 'bench', 'models', `${name}.onnx`);
  return path.join(SHARED, 'reference', 'models', `${name}.onnx`);
}

/** pytorch-grad-cam 1.5.5 on this kind of 2-core machine (../shared/reference/README.md), img/s. */
const PYTORCH: Record<string, Record<number, Partial<Record<Column, number>>>> = {
  resnet18: { 1: { forward: 40.6, gradcam: 12.1, 'guided-backprop': 9.7, 'guided-gradcam': 5.4 },
    8: { forward: 39.5, gradcam: 15.1, 'guided-backprop': 9.5, 'guided-gradcam': 5.5 } },
  resnet50: { 1: { forward: 13.9, gradcam: 4.4, 'guided-backprop': 3.5, 'guided-gradcam': 2.0 },
    8: { forward: 18.5, gradcam: 6.0, 'guided-backprop': 3.8, 'guided-gradcam': 2.3 } },
};

/** The ONNX issue's goals at batch 8: img/s floors, and Grad-CAM within 10% of forward-only. */
const GOALS: Record<string, { gradcam: number; 'guided-gradcam': number }> = {
  resnet18: { gradcam: 45, 'guided-gradcam': 16.5 },
  resnet50: { gradcam: 18, 'guided-gradcam': 7 },
};

// ---------------------------------------------------------------------------------------------
// timing

/** Deterministic N(0,1)-ish input (a sum of uniforms), so every run sees the same data. */
function makeInput(shape: [number, number, number, number]): InputBatch {
  const len = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(len);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < len; i++) data[i] = u() + u() + u() - 1.5;
  return { data, shape, layout: 'nchw' };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  // the settings lib/onnx/session.ts uses for the generated models
  return {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1,
    executionMode: 'sequential', enableCpuMemArena: true, enableMemPattern: true,
  };
}

interface Row {
  type: 'result'; model: string; batch: number; method: Column; imgPerSec: number; msPerBatch: number;
  runsMs: number[]; engine: string; gradientsMs?: number; kernelsMs?: number; pytorch?: number; threads: number;
  /** process CPU time (all threads) per batch, and the rate it implies with `threads` cores to itself:
   *  a load-robust estimate on a shared machine (ORT's spinning threads make it slightly pessimistic) */
  cpuMsPerBatch: number; cpuImgPerSec: number;
}

async function benchModel(name: string, o: Options, emit: (r: Row) => void): Promise<void> {
  const file = modelPath(name);
  const proto = loadModel(file);
  const inVi = proto.graph!.input!.find((v) => !(proto.graph!.initializer ?? []).some((t) => t.name === v.name))!;
  const dims = (inVi.type?.tensorType?.shape?.dim ?? []).map((d) => Number(d.dimValue ?? -1));
  const [c, h, w] = [dims[1] > 0 ? dims[1] : 3, dims[2] > 0 ? dims[2] : 224, dims[3] > 0 ? dims[3] : 224];
  const bytes = new Uint8Array(fs.readFileSync(file));
  const fwd = o.methods.includes('forward') ? await ort.InferenceSession.create(bytes, sessionOptions(o.threads)) : undefined;
  let explainer: Explainer | undefined;
  try {
    explainer = await createOnnxExplainer(bytes, { executionProvider: 'cpu', intraOpThreads: o.threads });
  } catch (e) {
    console.error(`${name}: createOnnxExplainer failed: ${(e as Error).message}`);
  }
  try {
    for (const batch of o.batches) {
      const fixedBatch = dims[0] > 0 && dims[0] !== batch;
      if (fixedBatch) { console.error(`${name}: the model's batch is fixed at ${dims[0]}; skipping batch ${batch}`); continue; }
      const input = makeInput([batch, c, h, w]);
      // one closure per method; runs are interleaved (forward, gradcam, ... then again) so that a
      // busy machine slows every column alike and the ratios stay meaningful
      const cases: Array<{ method: Column; fn: () => Promise<void>; ms: number[]; cpu: number[]; g: number[]; k: number[]; engine: string; failed?: string }> = [];
      for (const method of o.methods) {
        const cs: (typeof cases)[number] = { method, fn: async () => undefined, ms: [], cpu: [], g: [], k: [], engine: '' };
        if (method === 'forward') {
          const feeds = { [inVi.name!]: new ort.Tensor('float32', input.data, input.shape) };
          cs.engine = 'onnxruntime-cpu (plain session)';
          cs.fn = async () => { await fwd!.run(feeds); };
        } else if (explainer) {
          cs.fn = async () => {
            const r = await explainer!.explain(input, { method });
            cs.engine = r.engine;
            cs.g.push(r.timings.gradientsMs);
            cs.k.push(r.timings.kernelsMs);
          };
        } else continue;
        cases.push(cs);
      }
      for (let i = 0; i < o.warmup + o.runs; i++) {
        for (const cs of cases) {
          if (cs.failed) continue;
          const t = performance.now();
          const c = process.cpuUsage();
          try {
            await cs.fn();
          } catch (e) {
            cs.failed = (e as Error).message;
            console.error(`${name} b${batch} ${cs.method}: ${cs.failed}`);
            continue;
          }
          const cu = process.cpuUsage(c);
          if (i >= o.warmup) {
            cs.ms.push(performance.now() - t);
            cs.cpu.push((cu.user + cu.system) / 1000);
          }
        }
      }
      for (const cs of cases) {
        if (cs.failed || !cs.ms.length) continue;
        const ms = median(cs.ms);
        const cpuMs = median(cs.cpu);
        emit({ type: 'result', model: name, batch, method: cs.method, threads: o.threads, pytorch: PYTORCH[name]?.[batch]?.[cs.method],
          imgPerSec: (batch * 1000) / ms, msPerBatch: ms, runsMs: cs.ms, engine: cs.engine,
          cpuMsPerBatch: cpuMs, cpuImgPerSec: (batch * 1000 * o.threads) / cpuMs,
          ...(cs.g.length ? { gradientsMs: median(cs.g.slice(o.warmup)), kernelsMs: median(cs.k.slice(o.warmup)) } : {}) });
      }
      if (o.profile && batch === Math.max(...o.batches)) await profile(name, bytes, input, o);
    }
  } finally {
    await fwd?.release();
    explainer?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// profiling: ORT's per-node trace of the generated models

interface TraceEvent { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }

async function profile(name: string, bytes: Uint8Array, input: InputBatch, o: Options): Promise<void> {
  fs.mkdirSync(o.profile!, { recursive: true });
  const proto = loadModel(bytes);
  const size = [input.shape[2], input.shape[3]];
  for (const [label, opts] of [['gradcam', { inputGradient: false }], ['guided-gradcam', { inputGradient: true, guided: true }]] as const) {
    let gm;
    try {
      const layer = listOnnxLayers(proto).find((l) => l.isDefault)?.name;
      if (!layer) throw new Error('no default layer');
      gm = buildGradientModel(loadModel(bytes), { layers: [layer], ...opts, inputShape: [-1, input.shape[1], size[0], size[1]] });
    } catch (e) {
      console.error(`profile ${name} ${label}: ${(e as Error).message}`);
      continue;
    }
    const s = await ort.InferenceSession.create(saveModel(gm.model), {
      ...sessionOptions(o.threads), enableProfiling: true, profileFilePrefix: path.join(o.profile!, `${name}-${label}`),
    });
    const n = input.shape[0];
    const feeds: Record<string, ort.Tensor> = {
      [gm.input]: new ort.Tensor('float32', input.data, input.shape),
      [gm.classInput]: new ort.Tensor('int64', new BigInt64Array(n).fill(-1n), [n]),
      [gm.signInput]: new ort.Tensor('float32', new Float32Array([1]), []),
    };
    await s.run(feeds); // warm-up, counted in the trace too; reported per run below
    const runs = 3;
    for (let i = 0; i < runs; i++) await s.run(feeds);
    const file: unknown = await (s as unknown as { endProfiling(): unknown }).endProfiling();
    await s.release();
    const traceFile = typeof file === 'string' && fs.existsSync(file) ? file : latest(o.profile!, `${name}-${label}`);
    if (!traceFile) { console.error(`profile ${name} ${label}: no trace file`); continue; }
    report(name, label, input.shape[0], JSON.parse(fs.readFileSync(traceFile, 'utf8')) as TraceEvent[], runs + 1, o.json, traceFile);
  }
}

function latest(dir: string, prefix: string): string | undefined {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json'))
    .map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return files[0];
}

function report(name: string, label: string, batch: number, events: TraceEvent[], runs: number, json: boolean, file: string): void {
  const nodes = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'));
  const byOp = new Map<string, { fwd: number; bwd: number }>();
  const byNode = new Map<string, { op: string; us: number }>();
  let fwd = 0;
  let bwd = 0;
  for (const e of nodes) {
    const node = e.name!.slice(0, -'_kernel_time'.length);
    const op = e.args?.op_name ?? '?';
    const us = (e.dur ?? 0) / runs;
    const isBwd = node.startsWith('gradcam/') || node.includes('gradcam');
    const slot = byOp.get(op) ?? { fwd: 0, bwd: 0 };
    if (isBwd) { slot.bwd += us; bwd += us; } else { slot.fwd += us; fwd += us; }
    byOp.set(op, slot);
    const nd = byNode.get(node) ?? { op, us: 0 };
    nd.us += us;
    byNode.set(node, nd);
  }
  const ops = [...byOp.entries()].sort((a, b) => (b[1].fwd + b[1].bwd) - (a[1].fwd + a[1].bwd));
  const top = [...byNode.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 12);
  if (json) {
    console.log(JSON.stringify({ type: 'profile', model: name, method: label, batch, forwardMs: fwd / 1000, backwardMs: bwd / 1000,
      byOp: Object.fromEntries(ops.map(([k, v]) => [k, { forwardMs: v.fwd / 1000, backwardMs: v.bwd / 1000 }])),
      topNodes: top.map(([k, v]) => ({ node: k, op: v.op, ms: v.us / 1000 })), trace: file }));
    return;
  }
  console.log(`\nprofile ${name} ${label} batch ${batch} (per run, kernel time; trace ${file})`);
  console.log(`  forward nodes ${(fwd / 1000).toFixed(1)} ms, backward nodes ${(bwd / 1000).toFixed(1)} ms`);
  console.log('  op type                 forward ms  backward ms');
  for (const [op, v] of ops.slice(0, 12)) {
    console.log(`  ${op.padEnd(22)} ${(v.fwd / 1000).toFixed(2).padStart(11)} ${(v.bwd / 1000).toFixed(2).padStart(12)}`);
  }
  console.log('  slowest nodes:');
  for (const [node, v] of top) console.log(`    ${(v.us / 1000).toFixed(2).padStart(8)} ms  ${v.op.padEnd(18)} ${node}`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const missing = o.models.filter((m) => !fs.existsSync(modelPath(m)));
  const missingBench = missing.filter((m) => m.startsWith('resnet'));
  if (missingBench.length) {
    console.error(`Missing benchmark model(s): ${missingBench.map(modelPath).join(', ')}\n`
      + 'Make them (torchvision, random weights, opset 17, dynamic batch) with:\n'
      + '    /usr/bin/python3 scripts/export-bench-models.py\n'
      + 'or run only the others with --models=smallvgg,mobilenet_v2');
    process.exit(1);
  }
  for (const m of missing) console.error(`${m}: ${modelPath(m)} not found, skipped (set GRADCAM_SHARED to the shared folder)`);
  const load = os.loadavg()[0];
  const header = { type: 'env', node: process.version, cpus: os.cpus().length, threads: o.threads, loadavg1: load,
    onnxruntime: (require('onnxruntime-node/package.json') as { version: string }).version, runs: o.runs, warmup: o.warmup };
  if (o.json) console.log(JSON.stringify(header));
  else {
    console.log(`onnxruntime-node ${header.onnxruntime}, ${header.cpus} CPUs, ${o.threads} ORT threads, median of ${o.runs} runs after ${o.warmup} warm-up`);
    if (load > os.cpus().length * 0.75) console.log(`warning: load average ${load.toFixed(1)} on ${os.cpus().length} CPUs: numbers are unreliable`);
  }
  const rows: Row[] = [];
  const emit = (r: Row) => {
    rows.push(r);
    if (o.json) console.log(JSON.stringify(r));
  };
  for (const m of o.models.filter((x) => !missing.includes(x))) await benchModel(m, o, emit);

  const get = (model: string, batch: number, method: Column) => rows.find((r) => r.model === model && r.batch === batch && r.method === method);
  /** one table of img/s per (model, batch) and method, read from `rate` (wall clock or CPU-time estimate) */
  const table = (rate: (r: Row) => number) => {
    console.log(`${'model'.padEnd(14)}${'batch'.padStart(6)}${COLUMNS.map((c) => c.padStart(22)).join('')}   gradcam/forward`);
    for (const m of o.models) {
      for (const b of o.batches) {
        if (!rows.some((r) => r.model === m && r.batch === b)) continue;
        const cells = COLUMNS.map((c) => {
          const r = get(m, b, c);
          return (r ? `${rate(r).toFixed(1)}${r.pytorch ? ` (${r.pytorch})` : ''}` : '-').padStart(22);
        });
        const f = get(m, b, 'forward');
        const gc = get(m, b, 'gradcam');
        const ratio = f && gc ? `${((rate(gc) / rate(f)) * 100).toFixed(0)}%` : '-';
        console.log(`${m.padEnd(14)}${String(b).padStart(6)}${cells.join('')}   ${ratio.padStart(8)}`);
      }
    }
  };
  if (!o.json) {
    console.log('\nimages/second (pytorch-grad-cam on a 2-core machine in brackets)');
    table((r) => r.imgPerSec);
  }
  if (!o.json && load > os.cpus().length * 0.75) {
    console.log(`\nCPU-time estimate (batch / (process CPU time / ${o.threads} threads)): what ${o.threads} idle cores would give; use these on a busy machine`);
    table((r) => r.cpuImgPerSec);
  }
  // goals of the ONNX issue, at batch 8
  const goals: Array<{ type: 'goal'; model: string; goal: string; ratio: boolean; value: number | null; cpuEstimate: number | null; target: number; met: boolean }> = [];
  for (const [m, goal] of Object.entries(GOALS)) {
    const f = get(m, 8, 'forward');
    const gc = get(m, 8, 'gradcam');
    const ggc = get(m, 8, 'guided-gradcam');
    if (!f && !gc && !ggc) continue;
    goals.push({ type: 'goal', model: m, goal: 'gradcam img/s b8', ratio: false, value: gc?.imgPerSec ?? null, cpuEstimate: gc?.cpuImgPerSec ?? null, target: goal.gradcam, met: !!gc && gc.imgPerSec >= goal.gradcam });
    goals.push({ type: 'goal', model: m, goal: 'gradcam / forward b8', ratio: true, value: gc && f ? gc.imgPerSec / f.imgPerSec : null,
      cpuEstimate: gc && f ? gc.cpuImgPerSec / f.cpuImgPerSec : null, target: 0.9,
      met: !!gc && !!f && gc.imgPerSec >= 0.9 * f.imgPerSec });
    goals.push({ type: 'goal', model: m, goal: 'guided-gradcam img/s b8', ratio: false, value: ggc?.imgPerSec ?? null, cpuEstimate: ggc?.cpuImgPerSec ?? null, target: goal['guided-gradcam'],
      met: !!ggc && ggc.imgPerSec >= goal['guided-gradcam'] });
  }
  if (o.json) for (const g of goals) console.log(JSON.stringify(g));
  else if (goals.length) {
    console.log('\ngoals (ONNX issue, batch 8):');
    for (const g of goals) {
      const fmt = (x: number | null) => (x === null ? 'n/a' : g.ratio ? `${(x * 100).toFixed(0)}%` : x.toFixed(1));
      const t = g.ratio ? `>= ${g.target * 100}%` : `>= ${g.target}`;
      console.log(`  ${g.met ? 'met ' : 'MISS'}  ${g.model.padEnd(9)} ${g.goal.padEnd(24)} ${fmt(g.value).padStart(7)}  (${t}; CPU-time estimate ${fmt(g.cpuEstimate)})`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
