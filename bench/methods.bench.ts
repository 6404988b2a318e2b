/**
 * CAM method family benchmark: images/second of each method at batch 8, this library against PyTorch
 * (scripts/torch-methods.py, which times each method the way pytorch-grad-cam 1.5.5 computes it), on
 *   resnet18      bench/models/resnet18.onnx      (ONNX, torchvision random weights)  vs torch resnet18
 *   mobilenet_v2  bench/models/mobilenet_v2.onnx  (ONNX, torchvision random weights)  vs torch mobilenet_v2
 *   nsfwjs        nsfwjs's MobileNetV2 (tfjs LayersModel, 224x224, wasm engine)      vs torch mobilenet_v2
 *                 (same architecture, torchvision's: the nearest PyTorch counterpart, not the same model)
 * The ONNX files are made by the same script (`--export-only`) when missing.
 *
 * The contenders alternate in one invocation: our pass, the torch script (one spawn for every model),
 * our pass again (and, with --rounds=N, N torch/ours pairs), so that load from other processes hits both.
 * Ours = median over all our timed runs (after one untimed warm-up, which builds the sessions); torch
 * = median over its spawns. Same input size, batch and thread count (ORT intra-op threads = torch
 * threads = --threads, default 2). Target layers: ResNet layer4[-1] and MobileNetV2 features[-1]
 * (their ONNX tensor names below); nsfwjs: the explainer's default layer.
 *
 * Methods the library does not know (explain throws) are reported 'n/a'. Option variants
 * (augSmooth, eigenSmooth) are explain() options: an option it did not know would be an error
 * (EUNKNOWNOPTION), so every variant that runs is the variant named.
 *
 * Usage: npm run bench:methods -- [--quick] [--json] [--models=resnet18,mobilenet_v2,nsfwjs]
 *        [--methods=gradcam,layercam,...] [--runs=3] [--rounds=1] [--threads=2] [--batch=8]
 *        [--torch-lean] [--no-torch] [--python=/usr/bin/python3]
 *   --quick       1 timed run per method per pass, torch --quick, nsfwjs without aug_smooth: ~2-3 min on an idle 2-core machine
 *   --torch-lean  also time the lean batched PyTorch implementation (an extra column)
 *   --no-torch    ours only
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { METHOD_NAMES } from '../lib/cam/methods';
import type { InputBatch } from '../lib/types';
import { repoRoot } from '../test/helpers/reference-data';

// ---------------------------------------------------------------------------------------------
// the methods come from the registry; the option variants and goals are the bench's own
const METHODS: readonly string[] = METHOD_NAMES;

/** option variants: a bench name, the method and the explain options it adds (torch-methods.py uses the same names) */
const VARIANTS: Record<string, { method: string; options: Record<string, unknown> }> = {
  'gradcam+augSmooth': { method: 'gradcam', options: { augSmooth: true } },
  'gradcam+eigenSmooth': { method: 'gradcam', options: { eigenSmooth: true } },
};

/** The goals, per bench name: vsTorch = at least that many times the pytorch-grad-cam-like torch figure;
 *  nearGradcam = within 10% of our own gradcam; group = within 10% of each other (max/min <= 1.1). */
const GOALS: Record<string, { vsTorch?: number; nearGradcam?: boolean; group?: string }> = {
  gradcam: { vsTorch: 3 },
  'gradcam++': { vsTorch: 3, nearGradcam: true },
  xgradcam: { vsTorch: 3, nearGradcam: true },
  hirescam: { vsTorch: 3, nearGradcam: true },
  layercam: { vsTorch: 3, nearGradcam: true },
  'gradcam-elementwise': { vsTorch: 3, nearGradcam: true },
  eigengradcam: { vsTorch: 3, nearGradcam: true },
  eigencam: { vsTorch: 3 },
  saliency: { vsTorch: 3, group: 'input-gradient' },
  deconvnet: { vsTorch: 3, group: 'input-gradient' },
  'guided-backprop': { vsTorch: 3, group: 'input-gradient' },
  'guided-gradcam': { vsTorch: 3 },
  'gradcam+augSmooth': { vsTorch: 3 },
  'gradcam+eigenSmooth': { vsTorch: 3 },
};

/** torch-methods.py's models, the ONNX tensor of their target layer, and the torch model each of ours is compared with */
const MODELS: Record<string, { kind: 'onnx' | 'tfjs'; torch: string; layer?: string; file?: string }> = {
  resnet18: { kind: 'onnx', torch: 'resnet18', layer: '/layer4/layer4.1/relu_1/Relu_output_0' },
  mobilenet_v2: { kind: 'onnx', torch: 'mobilenet_v2', layer: '/features/features.18/features.18.2/Clip_output_0' },
  nsfwjs: { kind: 'tfjs', torch: 'mobilenet_v2' },
};

// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean; json: boolean; models: string[]; methods: string[]; runs: number; rounds: number; threads: number;
  batch: number; torch: boolean; torchLean: boolean; python: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false, json: false, models: Object.keys(MODELS), methods: [...METHODS, ...Object.keys(VARIANTS)], runs: 3, rounds: 1,
    threads: 2, batch: 8, torch: true, torchLean: false, python: process.env.GRADCAM_PYTHON ?? '/usr/bin/python3',
  };
  let runsSet = false;
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    switch (key) {
      case '--quick': o.quick = true; break;
      case '--json': o.json = true; break;
      case '--models': o.models = list(value); break;
      case '--methods': o.methods = list(value); break;
      case '--runs': o.runs = Math.max(1, Number(value)); runsSet = true; break;
      case '--rounds': o.rounds = Math.max(1, Number(value)); break;
      case '--threads': o.threads = Number(value); break;
      case '--batch': o.batch = Number(value); break;
      case '--torch-lean': o.torchLean = true; break;
      case '--no-torch': o.torch = false; break;
      case '--python': o.python = value; break;
      default: console.error(`unknown option ${arg}`); process.exit(2);
    }
  }
  if (o.quick && !runsSet) o.runs = 1;
  for (const m of o.models) if (!MODELS[m]) { console.error(`unknown model ${m} (one of ${Object.keys(MODELS).join(', ')})`); process.exit(2); }
  for (const m of o.methods) if (!METHODS.includes(m) && !VARIANTS[m]) { console.error(`unknown method ${m} (one of ${[...METHODS, ...Object.keys(VARIANTS)].join(', ')})`); process.exit(2); }
  return o;
}

const ROOT = repoRoot();
const SCRIPT = path.join(ROOT, 'scripts', 'torch-methods.py');
const onnxFile = (name: string) => path.join(ROOT, 'bench', 'models', `${name}.onnx`);

/** Deterministic N(0,1)-ish input (a sum of uniforms), as bench/onnx.bench.ts. */
function makeInput(shape: [number, number, number, number], layout: 'nchw' | 'nhwc'): InputBatch {
  const len = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(len);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < len; i++) data[i] = u() + u() + u() - 1.5;
  return { data, shape, layout };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** what the harness needs of an explainer (lib/types Explainer, with method names beyond today's Method type) */
interface MethodExplainer {
  explain(input: InputBatch, options: Record<string, unknown>): Promise<unknown>;
  dispose(): void;
  layers(): Array<{ name: string }>;
  readonly defaultLayer: string;
}

interface Contender {
  model: string;
  input: InputBatch;
  explainer?: MethodExplainer;
  layer?: string;
  failed?: string;
  /** per bench name: wall ms and CPU ms per timed run, or why it is n/a */
  ms: Map<string, number[]>;
  cpuMs: Map<string, number[]>;
  na: Map<string, string>;
  warm: Set<string>;
  dispose?: () => void;
}

async function makeContender(name: string, o: Options): Promise<Contender> {
  const spec = MODELS[name];
  const c: Contender = { model: name, input: makeInput([o.batch, 3, 224, 224], 'nchw'), ms: new Map(), cpuMs: new Map(), na: new Map(), warm: new Set() };
  try {
    if (spec.kind === 'onnx') {
      const { createOnnxExplainer } = await import('../lib/onnx');
      const ex = await createOnnxExplainer(new Uint8Array(fs.readFileSync(onnxFile(name))), { executionProvider: 'cpu', intraOpThreads: o.threads });
      c.explainer = ex as unknown as MethodExplainer;
      const names = ex.layers().map((l) => l.name);
      if (spec.layer && names.includes(spec.layer)) c.layer = spec.layer;
      else {
        console.error(`${name}: target tensor ${spec.layer} not found; using the default layer ${ex.defaultLayer}`);
        c.layer = ex.defaultLayer;
      }
    } else {
      const tf = await import('@tensorflow/tfjs');
      const { createTfjsExplainer, loadTfjsModel } = await import('../lib/tfjs');
      const file = path.join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2', 'model.min.js');
      const model = (await loadTfjsModel(file)) as import('@tensorflow/tfjs').LayersModel;
      const ex = await createTfjsExplainer(model, { engine: 'wasm' });
      c.explainer = ex as unknown as MethodExplainer;
      c.layer = ex.defaultLayer;
      c.input = makeInput([o.batch, 224, 224, 3], 'nhwc');
      c.dispose = () => { ex.dispose(); model.dispose(); void tf; };
    }
  } catch (e) {
    c.failed = (e as Error).message;
    console.error(`${name}: ${c.failed}`);
  }
  return c;
}

function optionsFor(bench: string, layer: string | undefined): { method: string; options: Record<string, unknown> } {
  const v = VARIANTS[bench];
  const method = v ? v.method : bench;
  const extra = v ? v.options : {};
  return { method, options: { method, ...(layer ? { layer } : {}), ...extra } };
}

/** one pass of ours over every method of one model: warm-up on first sight, then o.runs timed runs */
async function ourPass(c: Contender, methods: string[], o: Options, log: (s: string) => void): Promise<void> {
  if (!c.explainer) return;
  for (const bench of methods) {
    if (c.na.has(bench)) continue;
    if (o.quick && c.model === 'nsfwjs' && bench === 'gradcam+augSmooth') { c.na.set(bench, 'skipped in --quick'); continue; }
    const { options } = optionsFor(bench, c.layer);
    if (!c.warm.has(bench)) {
      try {
        // two warm-up calls: the first builds the session, the second still grows ORT's memory arena
        // (measured: the first timed call after a single warm-up ran at a third of the steady speed)
        await c.explainer.explain(c.input, options);
        await c.explainer.explain(c.input, options);
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        c.na.set(bench, /Expected one of/.test(msg) ? 'method not in the library' : msg.slice(0, 80));
        continue;
      }
      c.warm.add(bench);
    }
    for (let i = 0; i < o.runs; i++) {
      const t = performance.now();
      const u = process.cpuUsage();
      await c.explainer.explain(c.input, options);
      const ms = performance.now() - t;
      const du = process.cpuUsage(u);
      (c.ms.get(bench) ?? c.ms.set(bench, []).get(bench)!).push(ms);
      (c.cpuMs.get(bench) ?? c.cpuMs.set(bench, []).get(bench)!).push((du.user + du.system) / 1000);
    }
    log(`  ours ${c.model} ${bench}: ${((1000 * o.batch) / median(c.ms.get(bench)!)).toFixed(2)} img/s`);
  }
}

type TorchFigures = Record<string, Record<string, number>>;

function torchPass(models: string[], methods: string[], o: Options, log: (s: string) => void): TorchFigures | undefined {
  const args = [SCRIPT, '--models', models.join(','), '--methods', methods.join(','), '--mode', o.torchLean ? 'both' : 'pgc',
    '--batch', String(o.batch), '--threads', String(o.threads), '--cpu-estimate', ...(o.quick ? ['--quick'] : [])];
  const t = performance.now();
  const r = spawnSync(o.python, args, { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 30 * 60 * 1000 });
  if (r.status !== 0) {
    console.error(`torch-methods.py failed (${r.status ?? r.signal}): ${(r.stderr ?? r.error?.message ?? '').slice(-2000)}`);
    return undefined;
  }
  log(`  torch pass: ${((performance.now() - t) / 1000).toFixed(0)} s`);
  const line = r.stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  return line ? (JSON.parse(line) as TorchFigures) : undefined;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  process.env.GRADCAM_QUIET = process.env.GRADCAM_QUIET ?? '1';
  const t0 = performance.now();
  const log = (s: string) => { if (!o.json) console.error(s); };
  const onnxModels = o.models.filter((m) => MODELS[m].kind === 'onnx');
  const missing = onnxModels.filter((m) => !fs.existsSync(onnxFile(m)));
  if (missing.length) {
    log(`exporting ${missing.join(', ')} with ${SCRIPT} --export-only`);
    const r = spawnSync(o.python, [SCRIPT, '--export-only', '--models', missing.join(',')], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) { console.error('export failed; run /usr/bin/python3 scripts/torch-methods.py --export-only'); process.exit(1); }
  }
  const torchModels = [...new Set(o.models.map((m) => MODELS[m].torch))];
  const load0 = os.loadavg()[0];
  const contenders: Contender[] = [];
  for (const m of o.models) contenders.push(await makeContender(m, o));

  const torchRuns: TorchFigures[] = [];
  const ours = async (label: string) => {
    log(`ours, ${label}`);
    for (const c of contenders) await ourPass(c, o.methods, o, log);
  };
  await ours('pass 1');
  for (let r = 0; r < o.rounds; r++) {
    if (o.torch) {
      log(`torch (scripts/torch-methods.py${o.quick ? ' --quick' : ''}), pass ${r + 1}`);
      const f = torchPass(torchModels, o.methods, o, log);
      if (f) torchRuns.push(f);
    }
    await ours(`pass ${r + 2}`);
  }
  for (const c of contenders) c.dispose?.();

  // ------------------------------------------------------------------------------------------- report
  const load = os.loadavg()[0];
  const busy = Math.max(load0, load) > os.cpus().length * 0.75;
  const torchOf = (model: string, key: string): number | undefined => {
    const xs = torchRuns.map((f) => f[MODELS[model].torch]?.[key]).filter((x): x is number => typeof x === 'number');
    return xs.length ? median(xs) : undefined;
  };
  const ourRate = (c: Contender, bench: string, cpu = false): number | undefined => {
    const xs = (cpu ? c.cpuMs : c.ms).get(bench);
    if (!xs?.length) return undefined;
    return cpu ? (1000 * o.batch * o.threads) / median(xs) : (1000 * o.batch) / median(xs);
  };
  const rows: Array<Record<string, unknown>> = [];
  for (const c of contenders) {
    for (const bench of o.methods) {
      const ours = ourRate(c, bench);
      const torch = torchOf(c.model, bench);
      rows.push({
        type: 'result', model: c.model, torchModel: MODELS[c.model].torch, method: bench, batch: o.batch, ours: ours ?? null,
        oursCpuEstimate: ourRate(c, bench, true) ?? null, torch: torch ?? null, torchCpuEstimate: torchOf(c.model, `${bench}:cpuEstimate`) ?? null,
        torchLean: o.torchLean ? torchOf(c.model, `lean:${bench}`) ?? null : undefined, na: c.na.get(bench) ?? c.failed ?? undefined,
      });
    }
  }
  const fmt = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));
  const table = (cpu: boolean) => {
    for (const c of contenders) {
      const g = ourRate(c, 'gradcam', cpu);
      const tm = MODELS[c.model].torch;
      console.log(`\n${c.model}${c.model === tm ? '' : ` (torch: ${tm})`}, batch ${o.batch}, layer ${c.layer ?? '-'}`);
      const head = ['method', 'ours img/s', 'torch img/s', 'ratio', '% of our gradcam', ...(o.torchLean && !cpu ? ['torch lean img/s'] : []), ''];
      const lines = [head];
      for (const bench of o.methods) {
        const ours = ourRate(c, bench, cpu);
        const torch = torchOf(c.model, cpu ? `${bench}:cpuEstimate` : bench);
        const na = c.na.get(bench) ?? c.failed;
        lines.push([bench, na ? 'n/a' : fmt(ours), fmt(torch), ours && torch ? `${(ours / torch).toFixed(2)}x` : '-',
          ours && g ? `${((ours / g) * 100).toFixed(0)}%` : '-', ...(o.torchLean && !cpu ? [fmt(torchOf(c.model, `lean:${bench}`))] : []),
          na ? `(${na})` : '']);
      }
      const w = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
      for (const l of lines) console.log(l.map((x, i) => (i === 0 || i === l.length - 1 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ').trimEnd());
    }
  };
  if (o.json) for (const r of rows) console.log(JSON.stringify(r));
  else {
    console.log(`\nimages/second, median wall time (ORT / torch threads ${o.threads}; torch = scripts/torch-methods.py pytorch-grad-cam-like${o.torchLean ? ', lean batched in the last column' : ''}); load ${load0.toFixed(1)} -> ${load.toFixed(1)} on ${os.cpus().length} CPUs`);
    table(false);
    if (busy) {
      console.log(`\nbusy machine: CPU-time estimates (batch / (process CPU time / ${o.threads})), what ${o.threads} idle cores would give`);
      table(true);
    }
  }

  // ------------------------------------------------------------------------------------------- goals
  const goals: Array<{ type: 'goal'; model: string; goal: string; value: number | null; cpuEstimate: number | null; target: string; met: boolean | null }> = [];
  const push = (model: string, goal: string, target: string, ok: (v: number) => boolean, value: (cpu: boolean) => number | null) => {
    const v = value(false);
    goals.push({ type: 'goal', model, goal, value: v, cpuEstimate: value(true), target, met: v === null ? null : ok(v) });
  };
  for (const c of contenders) {
    const ours = (bench: string, cpu: boolean) => (c.na.has(bench) || c.failed ? undefined : ourRate(c, bench, cpu));
    const groups = new Map<string, string[]>();
    for (const bench of o.methods) {
      const goal = GOALS[bench];
      if (!goal) continue;
      if (goal.vsTorch && o.torch) {
        push(c.model, `${bench} vs torch (pgc-like)`, `>= ${goal.vsTorch}x`, (v) => v >= goal.vsTorch!, (cpu) => {
          const a = ours(bench, cpu);
          const t = torchOf(c.model, cpu ? `${bench}:cpuEstimate` : bench);
          return a && t ? a / t : null;
        });
      }
      if (goal.nearGradcam) {
        push(c.model, `${bench} vs our gradcam`, '>= 0.9x', (v) => v >= 0.9, (cpu) => {
          const a = ours(bench, cpu);
          const g = ours('gradcam', cpu);
          return a && g ? a / g : null;
        });
      }
      if (goal.group && ours(bench, false)) groups.set(goal.group, [...(groups.get(goal.group) ?? []), bench]);
    }
    for (const [group, names] of groups) {
      push(c.model, `${group} spread (${names.join(', ')})`, '<= 1.1x', (v) => v <= 1.1, (cpu) => {
        const xs = names.map((n) => ours(n, cpu)).filter((x): x is number => !!x);
        return xs.length > 1 ? Math.max(...xs) / Math.min(...xs) : null;
      });
    }
  }
  if (o.json) for (const g of goals) console.log(JSON.stringify(g));
  else if (goals.length) {
    console.log(`\ngoals (batch ${o.batch}; met/MISS on wall clock, the CPU-time estimate in brackets${busy ? ': on this busy machine trust the estimate' : ''}):`);
    const x = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
    for (const g of goals) {
      console.log(`  ${g.met === null ? 'n/a ' : g.met ? 'met ' : 'MISS'}  ${g.model.padEnd(13)} ${g.goal.padEnd(56)} ${x(g.value).padStart(7)}  (cpu ${x(g.cpuEstimate)})  target ${g.target}`);
    }
  }
  log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
