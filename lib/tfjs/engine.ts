/**
 * The gradient engine for TensorFlow.js models: tfjs-node (or its GPU build) when installed,
 * else the WebAssembly backend with the gradient kernels it lacks, else the plain JavaScript cpu
 * backend. Chosen once per process (the first call decides), reported, overridable.
 */
import * as tf from '@tensorflow/tfjs';
import * as path from 'path';
import { GradcamError, checkOneOf } from '../errors';

export type TfjsEngine = 'tfjs-node' | 'tfjs-node-gpu' | 'tfjs-wasm' | 'tfjs-cpu';
export type TfjsEnginePreference = 'auto' | 'tfjs-node' | 'wasm' | 'cpu';
export const TFJS_ENGINE_PREFERENCES: readonly TfjsEnginePreference[] = ['auto', 'tfjs-node', 'wasm', 'cpu'];

/**
 * Kernels the wasm backend does not ship but gradients need: the filter gradients of the
 * convolutions (also used by tfjs-layers' fused convolutions), the input gradient of depthwise
 * convolutions, and UnsortedSegmentSum (the gradient of gather).
 */
export const WASM_MISSING_GRADIENT_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'UnsortedSegmentSum',
] as const;

/** one selection per preference ('auto' included), made once */
const choices = new Map<TfjsEnginePreference, Promise<TfjsEngine>>();
let current: TfjsEngine | undefined;

/** The engine chosen so far, or undefined before the first selectTfjsEngine(). */
export function currentTfjsEngine(): TfjsEngine | undefined {
  return current;
}

function resolvable(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

async function tryTfjsNode(tried: string[]): Promise<TfjsEngine | undefined> {
  for (const [pkg, engine] of [
    ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu'],
    ['@tensorflow/tfjs-node', 'tfjs-node'],
  ] as const) {
    if (!resolvable(pkg)) {
      tried.push(`${pkg}: not installed`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      require(pkg);
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        return engine;
      }
      tried.push(`${pkg}: backend 'tensorflow' did not initialize`);
    } catch (e) {
      tried.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return undefined;
}

async function tryWasm(tried: string[]): Promise<TfjsEngine | undefined> {
  if (!resolvable('@tensorflow/tfjs-backend-wasm')) {
    tried.push('@tensorflow/tfjs-backend-wasm: not installed (`npm install @tensorflow/tfjs-backend-wasm` for the WebAssembly engine)');
    return undefined;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(dist + path.sep);
    registerWasmGradientKernels();
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return 'tfjs-wasm';
    }
    tried.push("@tensorflow/tfjs-backend-wasm: backend 'wasm' did not initialize");
  } catch (e) {
    tried.push(`@tensorflow/tfjs-backend-wasm: ${(e as Error).message.split('\n')[0]}`);
  }
  return undefined;
}

async function useCpu(): Promise<TfjsEngine> {
  if (!(await tf.setBackend('cpu'))) throw new GradcamError("tfjs backend 'cpu' did not initialize", 'EENGINE');
  await tf.ready();
  return 'tfjs-cpu';
}

async function select(preference: TfjsEnginePreference): Promise<TfjsEngine> {
  const tried: string[] = [];
  let engine: TfjsEngine | undefined;
  if (preference === 'auto' || preference === 'tfjs-node') {
    engine = await tryTfjsNode(tried);
    if (!engine && preference === 'tfjs-node') {
      throw new GradcamError(
        `engine 'tfjs-node' requested but unavailable (${tried.join('; ')}); run \`npm install @tensorflow/tfjs-node\` or use engine 'wasm'`,
        'ENOENGINE',
      );
    }
  }
  if (!engine && (preference === 'auto' || preference === 'wasm')) {
    engine = await tryWasm(tried);
    if (!engine && preference === 'wasm') {
      throw new GradcamError(`engine 'wasm' requested but unavailable (${tried.join('; ')})`, 'ENOENGINE');
    }
  }
  if (!engine) engine = await useCpu();
  if (preference === 'auto') {
    const why = tried.length ? ` (${tried.join('; ')})` : '';
    autoNote = why;
    if (engineChoiceReporting) reportEngineChoice(engine, why);
  }
  return engine;
}

let engineChoiceReporting = true;
let autoNote: string | undefined;
let reported = false;

/**
 * The worker thread of a tfjs explainer (worker.ts) chooses its own engine but does not report it:
 * it sends the note back and the main thread reports it, once per process.
 */
export function reportEngineChoiceFromHere(on: boolean): void {
  engineChoiceReporting = on;
}

/** Why 'auto' chose what it chose (' (pkg: not installed; ...)' or ''); undefined before, or when GRADCAM_TFJS_ENGINE forced it. */
export function autoEngineNote(): string | undefined {
  return autoNote;
}

/** The console warning naming the automatic engine choice and why, once per process, unless GRADCAM_QUIET=1. */
export function reportEngineChoice(engine: TfjsEngine, why: string): void {
  if (reported || process.env.GRADCAM_QUIET === '1') return;
  reported = true;
  console.warn(`gradcam-node: TensorFlow.js gradient engine ${engine}${why}`);
}

/**
 * Picks the engine and activates its tfjs backend. 'auto' is decided once per process and reported
 * (a console warning naming the engine and why, unless GRADCAM_QUIET=1; GRADCAM_TFJS_ENGINE=
 * tfjs-node|wasm|cpu overrides the automatic choice). An explicit preference is honoured for that
 * call only (benchmarks comparing engines, an explainer created with { engine }): it does not change
 * what a later 'auto' resolves to. tfjs has one global backend, so each explainer re-activates its
 * own engine's backend when it runs (ensureBackend).
 */
export async function selectTfjsEngine(preference: TfjsEnginePreference = 'auto'): Promise<TfjsEngine> {
  checkOneOf('engine', preference, TFJS_ENGINE_PREFERENCES);
  if (preference === 'auto' && process.env.GRADCAM_TFJS_ENGINE && !choices.has('auto')) {
    // process-wide override of the automatic choice (tests, benchmarks, troubleshooting)
    const forced = checkOneOf('GRADCAM_TFJS_ENGINE', process.env.GRADCAM_TFJS_ENGINE, TFJS_ENGINE_PREFERENCES);
    choices.set('auto', selectTfjsEngine(forced));
  }
  let attempt = choices.get(preference);
  if (!attempt) {
    attempt = select(preference);
    choices.set(preference, attempt);
  }
  let engine: TfjsEngine;
  try {
    engine = await attempt;
  } catch (e) {
    choices.delete(preference);
    throw e;
  }
  ensureBackend(engine);
  current = engine;
  return engine;
}

const BACKEND_OF: Record<TfjsEngine, string> = {
  'tfjs-node': 'tensorflow',
  'tfjs-node-gpu': 'tensorflow',
  'tfjs-wasm': 'wasm',
  'tfjs-cpu': 'cpu',
};

/** Makes sure the global backend is still the engine's (someone may have called tf.setBackend). */
export function ensureBackend(engine: TfjsEngine): void {
  const name = BACKEND_OF[engine];
  if (tf.getBackend() !== name) {
    // setBackend resolves synchronously for an already initialized backend
    void tf.setBackend(name);
    if (tf.getBackend() !== name) throw new GradcamError(`tfjs backend '${name}' is not active`, 'EENGINE');
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient kernels for the wasm backend: each delegates to the cpu backend's kernel, moving the
// data across. They are used only in backward passes the explainer does not run on its own hot
// path (depthwise input gradient aside), so simplicity wins over speed here.

interface TensorInfoLike { dataId: object; shape: number[]; dtype: tf.DataType }
interface BackendLike {
  readSync(dataId: object): tf.TypedArray;
  write(values: tf.TypedArray, shape: number[], dtype: tf.DataType): object;
  disposeData(dataId: object, force?: boolean): boolean;
}

let wasmKernelsRegistered = false;

function cpuDelegate(kernelName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpu = tf.engine().findBackend('cpu') as unknown as BackendLike | null;
    const cpuKernel = tf.getKernel(kernelName, 'cpu');
    if (!cpu || !cpuKernel) throw new GradcamError(`cannot run ${kernelName}: the cpu backend is unavailable`, 'EENGINE');
    const wasmBackend = backend as unknown as BackendLike & {
      makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.TypedArray): TensorInfoLike;
    };
    const cpuInputs: Record<string, TensorInfoLike> = {};
    const written: object[] = [];
    try {
      for (const [name, info] of Object.entries(inputs as Record<string, TensorInfoLike>)) {
        const values = wasmBackend.readSync(info.dataId);
        const dataId = cpu.write(values, info.shape, info.dtype);
        written.push(dataId);
        cpuInputs[name] = { dataId, shape: info.shape, dtype: info.dtype };
      }
      const out = cpuKernel.kernelFunc({
        inputs: cpuInputs as unknown as tf.NamedTensorInfoMap,
        backend: cpu as unknown as tf.KernelBackend,
        attrs,
      }) as TensorInfoLike | TensorInfoLike[];
      const outs = Array.isArray(out) ? out : [out];
      const results = outs.map((o) => {
        const values = cpu.readSync(o.dataId);
        cpu.disposeData(o.dataId, true);
        return wasmBackend.makeOutput(o.shape, o.dtype, undefined, values);
      });
      return (Array.isArray(out) ? results : results[0]) as unknown as tf.TensorInfo;
    } finally {
      for (const id of written) cpu.disposeData(id, true);
    }
  };
}

/**
 * Gradient kernels the wasm backend has but gets wrong: its MaxPoolGrad disagrees with the cpu
 * and tensorflow backends (measured in tfjs 4.22: wrong routing even without ties), so it is
 * replaced by the cpu kernel.
 */
export const WASM_REPLACED_GRADIENT_KERNELS = ['MaxPoolGrad'] as const;

/**
 * Identity for wasm sharing the input's buffer (reference count), as the cpu backend's does. The
 * tape clones every tensor it saves for a backward pass (engine.saveTensorsForBackwardMode), and
 * wasm's own Identity copies the data each time: a guided pass through MobileNetV2 at batch 8
 * would copy gigabytes. Tensors are immutable, so sharing the buffer is safe.
 */
function sharedIdentity({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as unknown as TensorInfoLike;
  if (x.dtype === 'string') throw new GradcamError('Identity of a string tensor on wasm', 'EENGINE');
  (backend as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype } as unknown as tf.TensorInfo;
}

/** Registers the missing gradient kernels for the 'wasm' backend (idempotent). */
export function registerWasmGradientKernels(): void {
  if (wasmKernelsRegistered) return;
  const identity = tf.getKernel('Identity', 'wasm');
  if (identity) {
    const copying = identity.kernelFunc;
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel({
      kernelName: 'Identity',
      backendName: 'wasm',
      kernelFunc: (args) => ((args.inputs.x as unknown as TensorInfoLike).dtype === 'string' ? copying(args) : sharedIdentity(args)),
    });
  }
  for (const kernelName of WASM_REPLACED_GRADIENT_KERNELS) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: cpuDelegate(kernelName) });
  }
  for (const kernelName of WASM_MISSING_GRADIENT_KERNELS) {
    if (!tf.getKernel(kernelName, 'wasm')) {
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: cpuDelegate(kernelName) });
    }
  }
  wasmKernelsRegistered = true;
}
