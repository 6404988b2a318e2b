/**
 * ONNX Runtime sessions and where they run: in this thread (the default: no copies, but
 * onnxruntime-node's run is synchronous native work and blocks the event loop for its duration)
 * or in worker threads (the event loop stays free; the input batch is copied once into the
 * worker, the outputs are transferred back; several workers serve concurrent calls).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import './ort-present'; // before onnxruntime-node: a missing package is ENOENGINE
import type * as Ort from 'onnxruntime-node';
import { GradcamError, checkOneOf } from '../errors';
import { FileCheck, firstMismatch } from '../io/crc32';
import { takePrestarted } from './prestart';

let ortModule: typeof Ort | undefined;
/** onnxruntime-node, loaded on first use: a main thread whose sessions run in workers never loads it */
function ort(): typeof Ort {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  ortModule ??= require('onnxruntime-node') as typeof Ort;
  return ortModule;
}

export type ExecutionProviderRequest = 'auto' | 'cuda' | 'cpu';
export const EXECUTION_PROVIDERS: readonly ExecutionProviderRequest[] = ['auto', 'cuda', 'cpu'];

export interface OrtSession {
  session: Ort.InferenceSession;
  /** the execution provider that runs it */
  executionProvider: 'cpu' | 'cuda';
  /** why this provider (e.g. why CUDA was not used) */
  reason: string;
}

/** How a session loads its model: a cached ORT-optimized model needs no optimization again (cache.ts). */
export interface OrtLoadOptions {
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** where ORT writes the model it optimized (CPU sessions only: see cache.ts) */
  optimizedModelFilePath?: string;
  /**
   * With optimizedModelFilePath: the file name (next to it) ORT writes the optimized model's
   * initializers to, as external data; a session loading that model by path maps them from disk.
   */
  externalWeights?: string;
  /**
   * The bytes are the caller's to give away: a worker thread takes their ArrayBuffer (transferred,
   * the caller's view is emptied) instead of a structured-clone copy, which costs seconds for a
   * 50 MB model on a busy machine.
   */
  transferBytes?: boolean;
}

let cudaFailure: string | undefined;

/**
 * What ORT loads: the model's bytes, or a model file (a cache entry: ORT reads it and maps its
 * external weights itself, so no copy of the weights passes through JavaScript) with the files to
 * check against their recorded CRC-32 before the session is used.
 */
export type ModelSource = Uint8Array | ModelFile;
export interface ModelFile {
  path: string;
  verify?: FileCheck[];
}

export { prestartWorkers, prestartedWorkers } from './prestart';

/** Whether the CUDA execution provider can be tried (its provider library is next to the binding). */
export function cudaProvider(): { available: boolean; reason: string } {
  const b = ort().listSupportedBackends().find((x) => x.name === 'cuda');
  if (!b) return { available: false, reason: 'this onnxruntime-node build has no CUDA execution provider' };
  if (b.bundled) return { available: true, reason: 'bundled' };
  let ortDir = 'node_modules/onnxruntime-node';
  try {
    ortDir = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = path.join(ortDir, 'bin', 'napi-v6', process.platform, process.arch);
    if (fs.existsSync(path.join(dir, 'libonnxruntime_providers_cuda.so'))) return { available: true, reason: 'provider library installed' };
  } catch {
    // fall through
  }
  // onnxruntime-node's postinstall downloads the provider (CUDA 12, from NuGet); it is skipped by
  // ONNXRUNTIME_NODE_INSTALL=skip, --ignore-scripts or an allowScripts denial, or failed offline
  return {
    available: false,
    reason: 'the CUDA execution provider of onnxruntime-node is not installed (libonnxruntime_providers_cuda.so missing: its postinstall ' +
      'download was skipped, e.g. by ONNXRUNTIME_NODE_INSTALL=skip, or failed); to get it, with network access run ' +
      `\`ONNXRUNTIME_NODE_INSTALL=cuda12 node ${path.join(ortDir, 'script', 'install.js')}\``,
  };
}

/** Create an ORT session with throughput settings, trying CUDA first when asked; a model file is checked (FileCheck) before use. */
export async function createOrtSession(model: ModelSource, ep: ExecutionProviderRequest = 'auto', threads?: number, load: OrtLoadOptions = {}): Promise<OrtSession> {
  const s = await createSession(model, ep, threads, load);
  const verify = model instanceof Uint8Array ? undefined : model.verify;
  if (verify?.length) {
    // in the thread that loads the model (the caller's stays free), after ORT read the files
    const bad = firstMismatch(verify);
    if (bad !== undefined) {
      await s.session.release();
      throw new GradcamError(`The cached model differs from what was recorded (${bad})`, 'EORT');
    }
  }
  return s;
}

async function createSession(model: ModelSource, ep: ExecutionProviderRequest, threads: number | undefined, load: OrtLoadOptions): Promise<OrtSession> {
  checkOneOf('executionProvider', ep, EXECUTION_PROVIDERS);
  const source: string | Uint8Array = model instanceof Uint8Array ? model : model.path;
  const create = (o: Ort.InferenceSession.SessionOptions) => (typeof source === 'string' ? ort().InferenceSession.create(source, o) : ort().InferenceSession.create(source, o));
  const base: Ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: load.graphOptimizationLevel ?? 'all',
    // ORT warns that an optimized model it writes is for this machine's CPU only: cache.ts keys it so
    ...(load.optimizedModelFilePath ? { optimizedModelFilePath: load.optimizedModelFilePath, logSeverityLevel: 3 as const } : {}),
    ...(load.optimizedModelFilePath && load.externalWeights ? {
      extra: { session: { optimized_model_external_initializers_file_name: load.externalWeights, optimized_model_external_initializers_min_size_in_bytes: '1024' } },
    } : {}),
    intraOpNumThreads: threads ?? os.availableParallelism?.() ?? os.cpus().length,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
  };
  let reason = 'CPU requested';
  if (ep !== 'cpu') {
    const cuda = cudaProvider();
    if (!cuda.available) {
      reason = cuda.reason;
    } else if (cudaFailure && ep === 'auto') {
      reason = cudaFailure;
    } else {
      try {
        const session = await create({ ...base, executionProviders: ['cuda', 'cpu'] });
        return { session, executionProvider: 'cuda', reason: 'CUDA execution provider loaded' };
      } catch (e) {
        cudaFailure = `the CUDA execution provider did not load: ${(e as Error).message.split('\n')[0]}`;
        reason = cudaFailure;
      }
    }
    if (ep === 'cuda') throw new GradcamError(`executionProvider 'cuda' requested but ${reason}`, 'ENOCUDA');
  }
  try {
    const session = await create({ ...base, executionProviders: ['cpu'] });
    return { session, executionProvider: 'cpu', reason };
  } catch (e) {
    throw new GradcamError(`ONNX Runtime could not load the generated model: ${(e as Error).message}`, 'EORT');
  }
}


/** A tensor crossing a thread boundary: plain data. */
export interface TensorData {
  type: Ort.Tensor.Type;
  data: Ort.Tensor.DataType;
  dims: readonly number[];
}

/** Runs one model: feeds in, named outputs back. */
export interface Runner {
  readonly executionProvider: 'cpu' | 'cuda';
  readonly reason: string;
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

export { SharedInputPool } from '../io/shared-pool';

/**
 * ONNX Runtime refuses a tensor over a SharedArrayBuffer ("Invalid argument"): the feed's values in
 * ordinary memory, taken from `pool` (buffers of the exact size, reused) when given.
 */
export function ownedFeed(v: TensorData, pool?: ArrayBuffer[]): { data: Ort.Tensor.DataType; buffer?: ArrayBuffer } {
  const d = v.data as Float32Array;
  if (!(ArrayBuffer.isView(d) && typeof SharedArrayBuffer !== 'undefined' && d.buffer instanceof SharedArrayBuffer)) return { data: v.data };
  const Ctor = d.constructor as Float32ArrayConstructor;
  const bytes = d.byteLength;
  const i = pool ? pool.findIndex((b) => b.byteLength === bytes) : -1;
  const buffer = i >= 0 ? (pool as ArrayBuffer[]).splice(i, 1)[0] : new ArrayBuffer(bytes);
  const data = new Ctor(buffer, 0, d.length);
  data.set(d);
  return { data, buffer };
}

/** In this thread: tensors wrap the caller's arrays, outputs are ORT's arrays (no copies here). */
export class InProcessRunner implements Runner {
  private constructor(private readonly s: OrtSession) {}

  static async create(model: ModelSource, ep: ExecutionProviderRequest, threads?: number, load?: OrtLoadOptions): Promise<InProcessRunner> {
    return new InProcessRunner(await createOrtSession(model, ep, threads, load));
  }

  get executionProvider(): 'cpu' | 'cuda' { return this.s.executionProvider; }
  get reason(): string { return this.s.reason; }

  async run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
    const t: Record<string, Ort.Tensor> = {};
    const { Tensor } = ort();
    for (const [k, v] of Object.entries(feeds)) t[k] = new Tensor(v.type as 'float32', ownedFeed(v).data as Float32Array, v.dims);
    const out = await this.s.session.run(t);
    const res: Record<string, TensorData> = {};
    for (const [k, v] of Object.entries(out)) {
      const tv = v as Ort.Tensor;
      res[k] = { type: tv.type, data: tv.data, dims: tv.dims };
    }
    return res;
  }

  async release(): Promise<void> {
    await this.s.session.release();
  }
}

interface Pending { resolve: (v: Record<string, TensorData>) => void; reject: (e: Error) => void }

/** One worker thread holding one session. */
class WorkerSession {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  busy = 0;

  private constructor(private readonly worker: Worker, readonly executionProvider: 'cpu' | 'cuda', readonly reason: string) {
    worker.on('message', (m: { id: number; outputs?: Record<string, TensorData>; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      // an idle worker must not keep the process alive; a busy one must (the caller awaits it)
      if (--this.busy === 0) this.worker.unref();
      if (m.error !== undefined) p.reject(new GradcamError(`ONNX Runtime failed: ${m.error}`, 'EORT'));
      else p.resolve(m.outputs as Record<string, TensorData>);
    });
    worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.busy = 0;
      worker.unref();
    });
    worker.unref();
  }

  /** model: the bytes or file, or their promise (the thread starts now, while the caller still reads or builds them) */
  static create(model: ModelSource | Promise<ModelBytes>, ep: ExecutionProviderRequest, threads: number, load?: OrtLoadOptions): Promise<WorkerSession> {
    return new Promise((resolve, reject) => {
      const now = model instanceof Promise ? undefined : model;
      // a prestarted thread gets everything in its first message
      const ready = takePrestarted();
      // a prestarted thread is unref'd while idle: the pending creation must keep the process alive
      ready?.ref();
      const worker = ready ?? new Worker(path.join(__dirname, 'worker.js'), { workerData: { bytes: now, ep, threads, load }, transferList: now && transferable(now, load) });
      if (ready && now) worker.postMessage({ bytes: now, load, ep, threads }, transferable(now, load));
      if (!now) {
        (model as Promise<ModelBytes>).then(
          (m) => worker.postMessage({ bytes: m.bytes, load: m.load, ep, threads }, transferable(m.bytes, m.load)),
          (e: Error) => { void worker.terminate(); reject(e); },
        );
      }
      const onReady = (m: { ready?: boolean; error?: string; executionProvider?: 'cpu' | 'cuda'; reason?: string }) => {
        worker.off('message', onReady);
        worker.off('error', onError);
        if (m.error !== undefined) {
          void worker.terminate();
          reject(new GradcamError(m.error, 'EORT'));
        } else {
          resolve(new WorkerSession(worker, m.executionProvider as 'cpu' | 'cuda', m.reason ?? ''));
        }
      };
      const onError = (e: Error) => reject(new GradcamError(`The ONNX worker thread failed: ${e.message}`, 'EWORKER'));
      worker.on('message', onReady);
      worker.once('error', onError);
    });
  }

  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
    const id = this.nextId++;
    if (this.busy++ === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // the caller keeps its input arrays: they are copied (structured clone), not transferred;
      // arrays over a SharedArrayBuffer (SharedInputPool) are shared, the worker copies them once
      this.worker.postMessage({ id, feeds });
    });
  }

  async release(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A model handed to a worker thread started before it was ready. */
export interface ModelBytes { bytes: ModelSource; load?: OrtLoadOptions }

/** The buffer to move into a worker; small arrays may sit in node's shared Buffer pool, which must not move: copied. */
function transferable(model: ModelSource, load?: OrtLoadOptions): ArrayBuffer[] | undefined {
  if (!(model instanceof Uint8Array)) return undefined;
  return load?.transferBytes && model.buffer instanceof ArrayBuffer && model.buffer.byteLength > 65536 ? [model.buffer] : undefined;
}

/** Sessions in worker threads; a run goes to the least busy one. */
export class WorkerRunner implements Runner {
  private constructor(private readonly workers: WorkerSession[]) {}

  /** `count` workers sharing the cores: intra-op threads = threads / count each (at least 1) */
  static async create(model: ModelSource | Promise<ModelBytes>, ep: ExecutionProviderRequest, count: number, threads?: number, load?: OrtLoadOptions): Promise<WorkerRunner> {
    const total = threads ?? os.availableParallelism?.() ?? os.cpus().length;
    const per = Math.max(1, Math.floor(total / count));
    const ws: WorkerSession[] = [];
    // only the first worker writes the optimized model (one writer per file); only the last may take the bytes
    const own = (l: OrtLoadOptions | undefined, i: number): OrtLoadOptions => ({ ...l, optimizedModelFilePath: i === 0 ? l?.optimizedModelFilePath : undefined, transferBytes: i === count - 1 && l?.transferBytes });
    try {
      for (let i = 0; i < count; i++) {
        const m = model instanceof Promise ? model.then((x) => ({ bytes: x.bytes, load: own(x.load, i) })) : model;
        ws.push(await WorkerSession.create(m, ep, per, own(load, i)));
      }
    } catch (e) {
      await Promise.all(ws.map((w) => w.release()));
      throw e;
    }
    return new WorkerRunner(ws);
  }

  get executionProvider(): 'cpu' | 'cuda' { return this.workers[0].executionProvider; }
  get reason(): string { return this.workers[0].reason; }

  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
    let best = this.workers[0];
    for (const w of this.workers) if (w.busy < best.busy) best = w;
    return best.run(feeds);
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.release()));
  }
}
