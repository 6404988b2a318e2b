/**
 * The Promise API of the 'js' device: the reference kernels run in a small pool of
 * worker_threads, so a long kernel never blocks the event loop.
 *
 * Inputs are COPIED into the worker (structured clone of the Float32Arrays): the caller keeps
 * its arrays and may even change them while the kernel runs. Outputs come back without a copy
 * (their buffers are transferred). The copy costs about as much as one pass over the input;
 * the native devices ('cpu', 'cuda') pass inputs without copies.
 *
 * The pool grows lazily to min(cores, 4) workers; idle workers are unref'd, so they never keep
 * the process alive, and are kept for the next call.
 */

import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { GradcamError } from '../errors';
import type { KernelsAsync, KernelsSync } from './types';
import type { JobMessage, ResultMessage } from './js-worker';
import { KERNEL_NAMES } from './validate';

interface Job {
  id: number;
  name: keyof KernelsSync;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  job: Job | null;
}

function toError(e: { name: string; message: string; stack?: string }): Error {
  const Ctor = e.name === 'TypeError' ? TypeError : e.name === 'RangeError' ? RangeError : Error;
  const err = new Ctor(e.message);
  if (Ctor === Error && e.name !== 'Error') err.name = e.name;
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

  run(name: keyof KernelsSync, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, name, args, resolve, reject });
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
        pw.worker.postMessage(msg);
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

/** KernelsAsync over the reference kernels, each call run in the worker pool (arguments NOT validated here). */
export function jsAsyncKernels(pool: KernelWorkerPool = jsKernelPool()): KernelsAsync {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of KERNEL_NAMES) {
    const at = OUT_ARGUMENT[name];
    out[name] = async (...args: unknown[]) => {
      const dst = at === undefined ? undefined : (args[at] as Float32Array | undefined);
      if (!dst) return pool.run(name, args);
      // the worker writes into its own array; the caller's `out` receives the result here
      const rest = args.slice();
      rest[at as number] = undefined;
      dst.set((await pool.run(name, rest)) as Float32Array);
      return dst;
    };
  }
  return out as unknown as KernelsAsync;
}

/** Position of the optional `out` argument of the kernels that take one. */
const OUT_ARGUMENT: Partial<Record<keyof KernelsSync, number>> = { resizeBilinear: 7, guidedProduct: 7 };
