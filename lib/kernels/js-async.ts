/**
 * The Promise API of the 'js' device: the reference kernels run in a small pool of
 * worker_threads, so a long kernel never blocks the event loop.
 *
 * Inputs are COPIED when the call is made (also when it waits in the queue for a worker), and
 * the copies are transferred to the worker: the caller keeps its arrays and may change, transfer
 * or resize them while the kernel runs (inputs on a SharedArrayBuffer too). Outputs come back
 * without a copy (their buffers are transferred); a caller's `out` array receives the result on
 * completion (a RangeError if it lost its length meanwhile). The copy costs about as much as
 * one pass over the input; the native devices copy inputs for their Promise API as well
 * (native/README.md).
 *
 * The pool grows lazily to min(cores, 4) workers; idle workers are unref'd, so they never keep
 * the process alive, and are kept for the next call.
 */

import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { GradcamError, invalidRange } from '../errors';
import { reference } from './reference';
import type { KernelsAsync, KernelsSync } from './types';
import type { JobMessage, ResultMessage } from './js-worker';
import { KERNEL_NAMES } from './validate';

interface Job {
  id: number;
  name: keyof KernelsSync;
  args: unknown[];
  transfer: ArrayBuffer[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  job: Job | null;
}

function toError(e: { name: string; message: string; stack?: string; code?: string }): Error {
  const Ctor = e.name === 'TypeError' ? TypeError : e.name === 'RangeError' ? RangeError : Error;
  const err = new Ctor(e.message);
  if (Ctor === Error && e.name !== 'Error') err.name = e.name;
  if (e.code !== undefined) (err as Error & { code?: string }).code = e.code;
  return err;
}

export class KernelWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;

  constructor(
    readonly size = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 4)),
    private readonly script = path.join(__dirname, 'js-worker.js'),
  ) {}

  /** `transfer`: buffers of `args` moved (not copied) to the worker. */
  run(name: keyof KernelsSync, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, name, args, transfer, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates every worker (pending jobs are rejected); the pool starts new ones on demand. */
  async close(): Promise<void> {
    const all = this.workers.splice(0);
    for (const pw of all) {
      pw.job?.reject(new GradcamError('kernel worker pool closed', 'WORKER_CLOSED'));
      pw.job = null;
    }
    await Promise.all(all.map((pw) => pw.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let pw = this.workers.find((w) => w.job === null);
      if (!pw && this.workers.length < this.size) {
        try {
          pw = this.spawn();
        } catch (e) {
          if (this.workers.length > 0) return; // the running workers will take the queue
          const err = e instanceof Error ? e : new Error(String(e));
          for (const job of this.queue.splice(0)) job.reject(err);
          return;
        }
      }
      if (!pw) return;
      const job = this.queue.shift()!;
      pw.job = job;
      pw.worker.ref();
      const msg: JobMessage = { id: job.id, name: job.name, args: job.args };
      try {
        pw.worker.postMessage(msg, job.transfer);
      } catch (e) {
        // e.g. an argument that cannot be cloned
        pw.job = null;
        pw.worker.unref();
        job.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  private spawn(): PoolWorker {
    if (!fs.existsSync(this.script)) {
      throw new GradcamError(
        `gradcam-node: the 'js' kernels' worker script ${this.script} is missing (run the compiled dist/ build, not the .ts sources)`,
        'WORKER_MISSING',
      );
    }
    const worker = new Worker(this.script);
    const pw: PoolWorker = { worker, job: null };
    worker.unref();
    worker.on('message', (msg: ResultMessage) => {
      const job = pw.job;
      pw.job = null;
      worker.unref();
      if (job && job.id === msg.id) {
        if (msg.ok) job.resolve(msg.result);
        else job.reject(toError(msg.error));
      }
      this.dispatch();
    });
    const fail = (err: Error): void => {
      const i = this.workers.indexOf(pw);
      if (i >= 0) this.workers.splice(i, 1);
      const job = pw.job;
      pw.job = null;
      job?.reject(new GradcamError(`gradcam-node: kernel worker failed: ${err.message}`, 'WORKER_FAILED'));
      this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.workers.includes(pw)) fail(new Error(`worker exited with code ${code}`));
    });
    this.workers.push(pw);
    return pw;
  }
}

let sharedPool: KernelWorkerPool | undefined;

/** The process-wide pool behind the 'js' device's Promise API. */
export function jsKernelPool(): KernelWorkerPool {
  sharedPool ??= new KernelWorkerPool();
  return sharedPool;
}

/**
 * The arguments of one call with every Float32Array and Uint8Array copied now (into a plain
 * ArrayBuffer, also from a SharedArrayBuffer), also those in arrays and options objects (camTail's
 * per-round arrays), and the copies' buffers, to be transferred to the worker.
 */
function copyArrays(args: unknown[]): { args: unknown[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const copy = (a: unknown): unknown => {
    if (a instanceof Float32Array || a instanceof Uint8Array) {
      // a plain copy: no species, no iterator
      const c = a instanceof Float32Array ? new Float32Array(a) : new Uint8Array(a);
      transfer.push(c.buffer as ArrayBuffer);
      return c;
    }
    if (Array.isArray(a)) return a.map(copy);
    // plain objects (the snapshots of lib/kernels/index.ts)
    if (typeof a === 'object' && a !== null && Object.getPrototypeOf(a) === Object.prototype) {
      return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, copy(v)]));
    }
    return a;
  };
  return { args: args.map(copy), transfer };
}

/** KernelsAsync over the reference kernels, each call run in the worker pool (arguments NOT validated here). */
export function jsAsyncKernels(pool: KernelWorkerPool = jsKernelPool()): KernelsAsync {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of KERNEL_NAMES) {
    const at = OUT_ARGUMENT[name];
    out[name] = async (...given: unknown[]) => {
      const dst = at === undefined ? undefined : (given[at] as Float32Array | undefined);
      const rest = given.slice();
      // the worker writes into its own array; the caller's `out` receives the result here
      if (dst) rest[at as number] = undefined;
      const { args, transfer } = copyArrays(rest);
      const result = pool.run(name, args, transfer);
      if (!dst) return result;
      const length = dst.length;
      const r = (await result) as Float32Array;
      if (dst.length !== length || r.length !== length) throw invalidRange('out', `Float32Array of length ${r.length}`, dst);
      dst.set(r);
      return dst;
    };
  }
  return out as unknown as KernelsAsync;
}

/**
 * KernelsSync of the 'js' device: the reference kernels, except that a caller's `out` on a
 * SharedArrayBuffer, with an input on a SharedArrayBuffer too, receives a copy of the result: two
 * SharedArrayBuffer objects may share memory (one cloned from the other), which no check can
 * see, and a kernel writing into memory it still reads would compute a wrong result.
 */
export function jsSyncKernels(): KernelsSync {
  const out: Record<string, unknown> = { ...reference };
  for (const [name, at] of Object.entries(OUT_ARGUMENT) as [keyof KernelsSync, number][]) {
    const fn = reference[name] as (...args: unknown[]) => Float32Array;
    out[name] = (...args: unknown[]) => {
      const dst = args[at] as Float32Array | undefined;
      const shared = (a: unknown): boolean => a instanceof Float32Array && !(a.buffer instanceof ArrayBuffer);
      if (!dst || !shared(dst) || !args.some((a, i) => i !== at && shared(a))) return fn(...args);
      const rest = args.slice();
      rest[at] = undefined;
      dst.set(fn(...rest));
      return dst;
    };
  }
  return out as unknown as KernelsSync;
}

/** Position of the optional `out` argument of the kernels that take one. */
const OUT_ARGUMENT: Partial<Record<keyof KernelsSync, number>> = { resizeBilinear: 7, guidedProduct: 7 };
