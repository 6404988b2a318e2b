/**
 * A tfjs model computing in a worker thread. TfjsWorkerAdapter is the main thread's ModelAdapter:
 * begin() moves the batch (the pipeline's own copy) to the worker, which runs the forward pass
 * and keeps it; round() runs a backward round there; the pass's release() frees it there; dispose()
 * makes the worker free the model and exit. Logits, activations and gradients come back as
 * transferred ArrayBuffers (no copies). The pipeline (lib/cam/explain.ts) runs unchanged in the
 * main thread, whose event loop stays free while the model computes.
 *
 * An idle worker is unref'd (it does not keep the process alive); a pending call refs it (the
 * caller awaits it). A worker that dies (an uncaught error, out of memory, terminated) rejects the
 * pending calls and every later one with GradcamError EWORKER; dispose() still works.
 *
 * A custom score function (targets: { score }) cannot cross threads: such a call runs on an
 * in-thread adapter of the same model, built on first need.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SHARE_ENV, Worker } from 'worker_threads';
import type { AdapterPass, GradientRequest, ModelAdapter } from '../cam/adapter';
import { GradcamError } from '../errors';
import { SharedInputPool } from '../io/shared-pool';
import type { InputBatch, LayerInfo, Layout } from '../types';
import { reportEngineChoice, type TfjsEngine } from './engine';
import { checkTfjsInput, resolveTfjsLayer, tfjsUnsupported, type TfjsModelAdapter, type TfjsModelInfo } from './explainer';
import type { FromWorker, TfjsWorkerInit, WireError, WorkerMemory } from './worker-protocol';

/** The worker script next to this file (absent when the .ts sources run without a build). */
export const WORKER_SCRIPT = path.join(__dirname, 'worker.js');

export function workerScriptPresent(): boolean {
  return fs.existsSync(WORKER_SCRIPT);
}

/** The same error class, message and code as in the worker. */
function fromWire(w: WireError): Error {
  const Ctor = w.name === 'TypeError' ? TypeError : w.name === 'RangeError' ? RangeError : w.name === 'SyntaxError' ? SyntaxError : undefined;
  if (Ctor) return w.code ? Object.assign(new Ctor(w.message), { code: w.code }) : new Ctor(w.message);
  if (w.name === 'GradcamError' || w.code) return new GradcamError(w.message, w.code ?? 'EWORKER');
  return new GradcamError(`TensorFlow.js failed in the worker thread: ${w.message}`, 'EWORKER');
}

/** The in-thread adapter a custom-score call runs on, and what frees it. */
export interface LocalAdapter { adapter: ModelAdapter; dispose(): void }

interface Pending { resolve: (m: FromWorker) => void; reject: (e: Error) => void }

export class TfjsWorkerAdapter implements TfjsModelAdapter {
  readonly thread = 'worker' as const;
  readonly supportsCustomScore = true;
  readonly threadReason = 'a worker thread (the default)';
  /** settles with the worker's exit code once its thread has ended */
  readonly exited: Promise<number>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private busy = 0;
  private failure: GradcamError | undefined;
  private disposed = false;
  private hasExited = false;
  /** forward passes begun and not yet released */
  private openPasses = 0;
  private closing = false;
  private readonly inputPool = new SharedInputPool();
  private local: Promise<LocalAdapter> | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly info: TfjsModelInfo,
    readonly engine: TfjsEngine,
    private readonly makeLocal: () => Promise<LocalAdapter>,
  ) {
    worker.on('message', (m: FromWorker) => {
      if (!('id' in m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      // an idle worker must not keep the process alive; a busy one must (the caller awaits it)
      if (--this.busy === 0) worker.unref();
      if ('error' in m) p.reject(fromWire(m.error));
      else {
        if ('pass' in m) this.openPasses++;
        p.resolve(m);
      }
      this.closeWhenIdle();
    });
    worker.on('error', (e) => this.fail(`failed: ${e.message}`));
    this.exited = new Promise((resolve) => {
      worker.on('exit', (code) => {
        this.hasExited = true;
        this.fail(`exited (code ${code})`);
        resolve(code);
      });
    });
    worker.unref();
  }

  /**
   * Starts the worker and waits for it to load the model. The worker is ref'd until then (the
   * caller awaits it). `transfer`: buffers of init.artifacts the caller gives away.
   */
  static start(init: TfjsWorkerInit, makeLocal: () => Promise<LocalAdapter>, transfer: ArrayBuffer[] = []): Promise<TfjsWorkerAdapter> {
    return new Promise((resolve, reject) => {
      // SHARE_ENV: GRADCAM_* variables set later (GRADCAM_TFJS_CHUNK) reach the worker
      const worker = new Worker(WORKER_SCRIPT, { workerData: init, transferList: transfer, env: SHARE_ENV });
      const done = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (m: FromWorker) => {
        if (!('ready' in m)) return;
        done();
        if (!m.ready) {
          void worker.terminate();
          reject(fromWire(m.error));
          return;
        }
        if (m.note !== undefined && init.engine === 'auto') reportEngineChoice(m.engine, m.note);
        resolve(new TfjsWorkerAdapter(worker, m.info, m.engine, makeLocal));
      };
      const onError = (e: Error) => {
        done();
        void worker.terminate();
        reject(new GradcamError(`The TensorFlow.js worker thread failed while loading the model: ${e.message}`, 'EWORKER'));
      };
      const onExit = (code: number) => {
        done();
        reject(new GradcamError(`The TensorFlow.js worker thread exited (code ${code}) while loading the model`, 'EWORKER'));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  get layout(): Layout {
    return this.info.layout;
  }
  get inputShape(): Array<number | null> {
    return this.info.inputShape.slice();
  }
  get defaultLayer(): string {
    return this.info.defaultLayer;
  }
  get fallbackLayers(): string[] {
    return this.info.fallbacks.slice();
  }
  layers(): LayerInfo[] {
    return this.info.layers.map((l) => ({ ...l, shape: l.shape.slice() }));
  }

  checkInput(input: unknown): InputBatch {
    if (this.disposed) throw new GradcamError('this explainer has been disposed', 'EDISPOSED');
    return checkTfjsInput(input, this.info);
  }

  resolveLayer(name: string): string {
    return resolveTfjsLayer(name, this.info.layers.some((l) => l.name === name), () => this.layers());
  }

  unsupported(request: GradientRequest): Error | undefined {
    return tfjsUnsupported(request, this.info.supportsGuided);
  }

  ruleActivations(guidedRelu6: boolean): number | undefined {
    const c = this.info.activationCounts;
    return c ? c.relu + (guidedRelu6 ? c.relu6 : 0) : undefined;
  }

  private fail(what: string): void {
    if (!this.failure && !(this.disposed && this.hasExited)) {
      this.failure = new GradcamError(`The TensorFlow.js worker thread ${what}`, 'EWORKER');
    }
    const err = this.failure ?? new GradcamError(`The TensorFlow.js worker thread ${what}`, 'EWORKER');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.busy = 0;
    this.worker.unref();
  }

  private call<T extends FromWorker>(message: object, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closing || (this.disposed && message && (message as { op: string }).op !== 'round')) {
      return Promise.reject(new GradcamError('this explainer has been disposed', 'EDISPOSED'));
    }
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    if (this.busy++ === 0) this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (m: FromWorker) => void, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /**
   * The pipeline's copy of the batch goes to reused SharedArrayBuffer memory: posted to the worker it
   * is shared, not copied or moved, and the next call's copy touches no fresh memory (a new 2.4 MB
   * batch of 4 pictures costs the event loop several ms of page faults on some VMs). The worker's
   * tensor copies the values at begin(); the pipeline releases the array after the pass.
   */
  inputArray(length: number): { data: Float32Array; release(): void } | undefined {
    if (typeof SharedArrayBuffer === 'undefined') return undefined;
    return this.inputPool.acquire(length);
  }

  async begin(batch: InputBatch, request: GradientRequest): Promise<AdapterPass> {
    if (request.score) {
      // a function cannot cross threads: this call runs in this thread
      this.local ??= this.makeLocal();
      return (await this.local).adapter.begin(batch, request);
    }
    const { score: _score, ...wire } = request;
    // the batch is the pipeline's own copy (adapter.ts): its buffer moves to the worker (a structured
    // clone of a MobileNetV2 batch of 4 costs the event loop 10-20 ms); a view into a larger buffer is copied
    // shared memory (inputArray) crosses as it is
    const d = batch.data;
    const own = d.buffer instanceof ArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
    const r = await this.call<Extract<FromWorker, { pass: number }>>(
      { op: 'begin', batch: { data: d, shape: batch.shape, layout: batch.layout }, request: wire }, own ? [d.buffer as ArrayBuffer] : []);
    let released = false;
    return {
      logits: r.logits,
      numClasses: r.numClasses,
      activations: r.activations,
      round: async (classes: Int32Array) => {
        const g = await this.call<Extract<FromWorker, { layerGrads: Float32Array[] }>>({ op: 'round', pass: r.pass, classes });
        return { classes, layerGrads: g.layerGrads, inputGradient: g.inputGradient };
      },
      release: () => {
        if (released) return;
        released = true;
        this.openPasses--;
        if (!this.failure && !this.hasExited) this.worker.postMessage({ op: 'release', pass: r.pass });
        this.closeWhenIdle();
      },
    };
  }

  /** Debugging and tests: tf.memory() in the worker thread, and the passes it holds. */
  async workerMemory(): Promise<WorkerMemory> {
    const m = await this.call<Extract<FromWorker, { baselineTensors: number }>>({ op: 'memory' });
    return { numTensors: m.numTensors, numBytes: m.numBytes, baselineTensors: m.baselineTensors, passes: m.passes };
  }

  /**
   * The worker frees the model and exits once the explain() calls already started are done (their
   * rounds still run); new calls are refused (EDISPOSED).
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.local) void this.local.then((l) => l.dispose(), () => undefined);
    if (this.hasExited) return;
    if (this.failure) {
      void this.worker.terminate();
      return;
    }
    this.closeWhenIdle();
  }

  private closeWhenIdle(): void {
    if (!this.disposed || this.closing || this.busy > 0 || this.openPasses > 0 || this.failure || this.hasExited) return;
    this.closing = true;
    // ref'd until it has exited (moments): `exited` settles
    this.worker.ref();
    this.worker.postMessage({ op: 'dispose' });
  }
}
