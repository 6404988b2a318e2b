/**
 * Command-line parsing for `gradcam`: node's util.parseArgs, then one validation pass that turns
 * strings into typed options. Every mistake becomes a UsageError with one line that names the flag.
 */
import { parseArgs } from 'util';
import { COLORMAPS, ColormapName } from '../image/colormap';
import { DEFAULT_METHOD, METHODS, METHOD_NAMES } from '../cam/methods';
import { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE } from '../image/limits';
import type { DeviceRequest, Layout, Method } from '../types';
import { didYouMean } from '../errors';
export const DEVICES: readonly DeviceRequest[] = ['auto', 'cuda', 'cpu', 'js'];
export const ENGINES = ['auto', 'tfjs-node', 'wasm', 'cpu'] as const;
export type EngineFlag = (typeof ENGINES)[number];

/** A mistake on the command line: printed as one line, exit code 2. `code` is from ERROR_CODES (lib/errors.ts). */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string, readonly code: 'EUSAGE' | 'ESIDECAR' = 'EUSAGE') {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ExplainArgs {
  model: string;
  inputs: string[];
  /** target layers (--layer repeatable) */
  layers?: string[];
  method: Method;
  /** multiply a CAM method's map with guided backprop */
  guided: boolean;
  augSmooth: boolean;
  eigenSmooth: boolean;
  /** undefined = argmax */
  classIndex?: number;
  topK?: number;
  counterfactual: boolean;
  out: string;
  npy: boolean;
  json: boolean;
  colormap: ColormapName;
  /** weight of the heatmap in the overlay (1 - pytorch-grad-cam's image_weight) */
  alpha: number;
  device: DeviceRequest;
  engine: EngineFlag;
  batchSize: number;
  size?: { width: number; height: number };
  mean?: number[];
  std?: number[];
  layout?: Layout;
  report: boolean;
  labels?: string;
  verbose: boolean;
  quiet: boolean;
  guidedRelu6: boolean;
  /** stop at the first input that fails (default: report it, skip it, go on) */
  failFast?: boolean;
  /** write PNG pictures (default true; --no-images for arrays/json only) */
  images: boolean;
  /** keep generated ONNX gradient models between runs (default true; --no-cache) */
  cache?: boolean;
  cacheDir?: string;
}

export interface LayersArgs {
  model: string;
  json: boolean;
  verbose: boolean;
  engine: EngineFlag;
  cache?: boolean;
  cacheDir?: string;
}

export interface DemoArgs {
  out: string;
  verbose: boolean;
  json: boolean;
  emotion: boolean;
}

const explainOptions = {
  model: { type: 'string', short: 'm' },
  input: { type: 'string', short: 'i', multiple: true },
  layer: { type: 'string', short: 'l', multiple: true },
  method: { type: 'string' },
  guided: { type: 'boolean' },
  'aug-smooth': { type: 'boolean' },
  'eigen-smooth': { type: 'boolean' },
  class: { type: 'string', short: 'c' },
  'top-k': { type: 'string', short: 'k' },
  counterfactual: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  npy: { type: 'boolean' },
  json: { type: 'boolean' },
  colormap: { type: 'string' },
  alpha: { type: 'string' },
  device: { type: 'string' },
  engine: { type: 'string' },
  'batch-size': { type: 'string', short: 'b' },
  size: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  layout: { type: 'string' },
  report: { type: 'boolean' },
  labels: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  quiet: { type: 'boolean', short: 'q' },
  'guided-relu6': { type: 'boolean' },
  'no-images': { type: 'boolean' },
  'no-cache': { type: 'boolean' },
  'cache-dir': { type: 'string' },
  'fail-fast': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** --no-cache / --cache-dir <dir>: whether and where generated ONNX models are kept (lib/onnx/cache.ts). */
function cacheFlags(noCache: boolean | undefined, dir: string | undefined): { cache: boolean; cacheDir?: string } {
  if (dir !== undefined && dir.trim() === '') throw new UsageError('--cache-dir must not be empty');
  if (noCache && dir !== undefined) throw new UsageError('--no-cache and --cache-dir cannot be used together');
  return { cache: !noCache, cacheDir: dir };
}

/** The ONNX explainer's cache option for the parsed flags. */
export function cacheOption(a: { cache?: boolean; cacheDir?: string }): boolean | { dir: string } {
  return a.cache === false ? false : a.cacheDir === undefined ? true : { dir: a.cacheDir };
}

/** Runs util.parseArgs, turning its errors into UsageErrors (its messages are already one line); an unknown flag gets the nearest known ones. */
function usage<R>(fn: () => R, options: Record<string, unknown> = {}): R {
  try {
    return fn();
  } catch (e) {
    let msg = (e as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    const unknown = /^Unknown option '--([^'=]+)'/.exec(msg);
    if (unknown) {
      const hint = didYouMean(unknown[1], Object.keys(options));
      if (hint) msg = msg.replace(/^(Unknown option '[^']+')/, `$1${hint.replace(/'([^']+)'/g, "'--$1'")}`);
    }
    throw new UsageError(msg);
  }
}

/**
 * util.parseArgs refuses a value that starts with '-' ("argument is ambiguous"), so `--class -1` or
 * `--mean -0.5,0,0` never reached our checks. A negative number after an option that takes a value
 * is joined to it (`--class=-1`): the flag's own check then accepts it or names the flag.
 */
export function joinNegativeNumbers(argv: readonly string[], options: Record<string, { type: string; short?: string }>): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== 'string') continue;
    takesValue.set(`--${name}`, name);
    if (o.short) takesValue.set(`-${o.short}`, name);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = takesValue.get(argv[i]);
    const next = argv[i + 1];
    if (name !== undefined && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      if (argv[i] === '--') {
        out.push(...argv.slice(i));
        break;
      }
      out.push(argv[i]);
    }
  }
  return out;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')} (got '${v}')${didYouMean(v, allowed)}`);
  }
  return v as T;
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) <= 0 || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--${flag} must be a positive integer (got '${v}')`);
  }
  return Number(v);
}

export function parseSize(v: string, flag = 'size'): { width: number; height: number } {
  const m = /^\s*(\d+)\s*[xX,]\s*(\d+)\s*$/.exec(v);
  const single = /^\s*(\d+)\s*$/.exec(v);
  const [w, h] = m ? [Number(m[1]), Number(m[2])] : single ? [Number(single[1]), Number(single[1])] : [NaN, NaN];
  if (!(w > 0 && h > 0 && Number.isSafeInteger(w) && Number.isSafeInteger(h))) {
    throw new UsageError(`--${flag} must be WIDTHxHEIGHT in pixels, e.g. 224x224 (got '${v}')`);
  }
  if (w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || w * h > MAX_IMAGE_PIXELS) {
    throw new UsageError(`--${flag} must be at most ${MAX_IMAGE_SIDE} pixels a side and ${MAX_IMAGE_PIXELS} pixels (4096x4096) in all (got '${v}')`);
  }
  return { width: w, height: h };
}

export function parseVector(flag: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length === 0 || parts.some((p) => p === '') || nums.some((x) => !Number.isFinite(x)) || (nums.length !== 1 && nums.length !== 3)) {
    throw new UsageError(`--${flag} must be one number or three comma-separated numbers, e.g. 0.485,0.456,0.406 (got '${v}')`);
  }
  if (flag === 'std' && nums.some((x) => x === 0)) throw new UsageError(`--std must not contain 0 (got '${v}')`);
  return nums;
}

export function parseExplainArgs(argv: string[]): ExplainArgs & { help: boolean } {
  const args = joinNegativeNumbers(argv, explainOptions);
  const { values: o, positionals } = usage(() => parseArgs({ args, options: explainOptions, allowPositionals: true, strict: true }), explainOptions);
  if (o.help) return { help: true } as ExplainArgs & { help: boolean };
  if (o.model === undefined) throw new UsageError('missing --model <model.onnx | model.json>');
  const inputs = [...(o.input ?? []), ...positionals];
  if (inputs.length === 0) throw new UsageError('missing --input <image files | a directory | tensor.npy>');
  let classIndex: number | undefined;
  if (o.class !== undefined && o.class !== 'argmax') {
    if (/^\s*-\d+\s*$/.test(o.class)) throw new UsageError(`--class must be a class index of 0 or more, or 'argmax' (got '${o.class}')`);
    if (!/^\d+$/.test(o.class.trim())) throw new UsageError(`--class must be a class index (0, 1, ...) or 'argmax' (got '${o.class}')`);
    classIndex = Number(o.class);
  }
  const topK = positiveInt('top-k', o['top-k']);
  if (topK !== undefined && classIndex !== undefined) throw new UsageError('--class and --top-k cannot be used together');
  let alpha = 0.5;
  if (o.alpha !== undefined) {
    alpha = Number(o.alpha);
    if (o.alpha.trim() === '' || !(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be a number between 0 and 1 (got '${o.alpha}')`);
  }
  const method = oneOf('method', o.method, METHOD_NAMES, DEFAULT_METHOD as Method);
  if (o.layer !== undefined && o.layer.some((l) => l.trim() === '')) throw new UsageError('--layer must not be empty');
  if (o.out !== undefined && o.out.trim() === '') throw new UsageError('--out must not be empty');
  return {
    help: false,
    model: o.model,
    inputs,
    layers: o.layer,
    method,
    guided: o.guided ?? false,
    augSmooth: o['aug-smooth'] ?? false,
    eigenSmooth: o['eigen-smooth'] ?? false,
    classIndex,
    topK,
    counterfactual: o.counterfactual ?? false,
    out: o.out ?? 'gradcam-out',
    npy: o.npy ?? false,
    json: o.json ?? false,
    colormap: oneOf('colormap', o.colormap, COLORMAPS, 'jet'),
    alpha,
    device: oneOf('device', o.device, DEVICES, 'auto'),
    engine: oneOf('engine', o.engine, ENGINES, 'auto'),
    batchSize: positiveInt('batch-size', o['batch-size']) ?? 8,
    size: o.size === undefined ? undefined : parseSize(o.size),
    mean: parseVector('mean', o.mean),
    std: parseVector('std', o.std),
    layout: o.layout === undefined ? undefined : oneOf('layout', o.layout, ['nchw', 'nhwc'] as const, 'nchw'),
    report: o.report ?? false,
    labels: o.labels,
    verbose: o.verbose ?? false,
    quiet: o.quiet ?? false,
    guidedRelu6: o['guided-relu6'] ?? false,
    failFast: o['fail-fast'] ?? false,
    images: !(o['no-images'] ?? false),
    ...cacheFlags(o['no-cache'], o['cache-dir']),
  };
}

export function parseLayersArgs(argv: string[]): LayersArgs & { help: boolean } {
  const options = {
    model: { type: 'string', short: 'm' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    engine: { type: 'string' },
    'no-cache': { type: 'boolean' },
    'cache-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const { values: o, positionals } = usage(() => parseArgs({ args: argv, options, allowPositionals: true, strict: true }), options);
  if (o.help) return { help: true } as LayersArgs & { help: boolean };
  const cache = cacheFlags(o['no-cache'] as boolean | undefined, o['cache-dir'] as string | undefined);
  const model = (o.model as string | undefined) ?? positionals[0];
  if (positionals.length > (o.model === undefined ? 1 : 0)) throw new UsageError(`unexpected argument '${positionals[positionals.length - 1]}'`);
  if (model === undefined) throw new UsageError('missing --model <model.onnx | model.json>');
  return { help: false, model, json: (o.json as boolean) ?? false, verbose: (o.verbose as boolean) ?? false, engine: oneOf('engine', o.engine as string | undefined, ENGINES, 'auto'), ...cache };
}

export function parseDemoArgs(argv: string[]): DemoArgs & { help: boolean } {
  const options = {
    out: { type: 'string', short: 'o' },
    verbose: { type: 'boolean', short: 'v' },
    json: { type: 'boolean' },
    'no-emotion': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const { values: o } = usage(() => parseArgs({ args: argv, options, allowPositionals: false, strict: true }), options);
  return {
    help: (o.help as boolean) ?? false,
    out: (o.out as string | undefined) ?? 'demo-out',
    verbose: (o.verbose as boolean) ?? false,
    json: (o.json as boolean) ?? false,
    emotion: !((o['no-emotion'] as boolean) ?? false),
  };
}

export const HELP = {
  main: `gradcam: Grad-CAM, Guided Backpropagation and Guided Grad-CAM for ONNX and TensorFlow.js models

Usage:
  gradcam explain --model <model.onnx|model.json> --input <images|dir|tensor.npy> [options]
  gradcam layers  --model <model.onnx|model.json> [--json]
  gradcam demo    [--out demo-out]

Run 'gradcam <command> --help' for the options of a command.`,
  explain: `Usage: gradcam explain --model <m> --input <files|dir|tensor.npy> [options]

Model and input
  -m, --model <path>        model.onnx, or a tfjs model.json (Layers or Graph model)
  -i, --input <path>        image file, directory of images, or a .npy model-input tensor
                            (repeatable; extra arguments are inputs too)
  -l, --layer <name>        target layer (default: the model's default, see 'gradcam layers');
                            ONNX: a tensor name, a node name or a PyTorch module path (layer4,
                            features.18); repeat it for several layers (their maps are averaged)
      --size <WxH>          resize images to the model input, e.g. 224x224
      --mean <r,g,b>        per-channel mean of pixel/255 (default 0)
      --std <r,g,b>         per-channel std of pixel/255 (default 1)
      --layout <nchw|nhwc>  layout of the input tensor (default: the model's)
      --labels <file>       class names: JSON array or one name per line
  Defaults for size/mean/std/layout/labels come from a sidecar JSON next to the model:
  <model>.gradcam.json (e.g. model.onnx.gradcam.json) or <model-dir>/gradcam.json.

What to explain
      --method <m>          one of (default ${DEFAULT_METHOD}):
${METHODS.map((m) => `                              ${m.name.padEnd(20)}${m.summary}`).join('\n')}
      --guided              multiply a CAM method's map with guided backprop (gradcam + --guided = guided-gradcam)
      --aug-smooth          average the maps of 6 augmented copies (flip x brightness 0.9, 1, 1.1)
      --eigen-smooth        first principal component of the weighted activations instead of their sum
  -c, --class <i|argmax>    one class for every image (default argmax)
  -k, --top-k <K>           explain the K best classes of each image
      --counterfactual      explain the negated score (regions that argue against the class)
      --guided-relu6        apply the input-gradient ReLU rule to ReLU6/Clip(0,6) too (off by default,
                            as in pytorch-grad-cam; MobileNets have only ReLU6, see README)

Output
  -o, --out <dir>           output folder (default gradcam-out)
      --npy                 also write <out>/<method>.npy float32 arrays (maps [N*K,H,W];
                            input gradients in the input's shape)
      --json                print one JSON document on stdout (per image: classes, files; engine, timings)
      --report              write <out>/report.html (self-contained)
      --colormap <name>     jet | turbo | viridis (default jet)
      --alpha <0..1>        heatmap weight in the overlay (default 0.5 = pytorch-grad-cam's image_weight 0.5)
      --no-images           write no PNG files

Engine
      --device <d>          CAM kernels: auto | cuda | cpu | js (default auto)
      --engine <e>          tfjs gradient engine: auto | tfjs-node | wasm | cpu (default auto)
  -b, --batch-size <N>      images per forward/backward pass (default 8)
      --cache-dir <dir>     where generated ONNX gradient models are kept between runs
                            (default $GRADCAM_CACHE_DIR, else ~/.cache/gradcam-node or the OS's cache folder)
      --no-cache            build the ONNX gradient model anew and keep nothing
      --fail-fast           stop at the first input that fails (default: name it, skip it, go on;
                            the exit code is 1 when any failed)
  -v, --verbose             more logging; stack traces on errors
  -q, --quiet               no progress or summary lines on stderr/stdout`,
  layers: `Usage: gradcam layers --model <model.onnx|model.json> [--json] [--cache-dir <dir> | --no-cache]

Lists the candidate target layers (4-D activations) with their output shapes; '*' marks the default.`,
  demo: `Usage: gradcam demo [--out demo-out] [--no-emotion] [--json]

Explains nsfwjs's MobileNetV2 (a real pretrained tfjs LayersModel shipped in an npm package) on the
bundled cat and coffee photos, and @vladmandic/human's emotion GraphModel on the astronaut's face,
writing overlays, Guided Grad-CAM pictures and report.html to the output folder.`,
};
