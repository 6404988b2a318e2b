/**
 * ONNX worker threads started before their model is known: a thread's start and the loading of
 * onnxruntime-node in it (about 0.1 s) overlap the caller's own start-up. This module loads no
 * onnxruntime-node itself, so that `gradcam explain` can start the thread before it loads the rest.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';

/** Taken by the next WorkerSession (runtime.ts); one not taken within PRESTART_MS ends. */
const prestarted: Worker[] = [];
const PRESTART_MS = 30e3;

export function prestartWorkers(count: number): void {
  while (prestarted.length < count) {
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: {} });
    const drop = () => {
      const i = prestarted.indexOf(worker);
      if (i >= 0) prestarted.splice(i, 1);
    };
    worker.once('error', drop);
    worker.once('exit', drop);
    worker.unref();
    const timer = setTimeout(() => {
      if (prestarted.includes(worker)) {
        drop();
        void worker.terminate();
      }
    }, PRESTART_MS);
    timer.unref();
    prestarted.push(worker);
  }
}

/** prestarted worker threads not taken (tests) */
export function prestartedWorkers(): number {
  return prestarted.length;
}

/** a prestarted thread, or undefined */
export function takePrestarted(): Worker | undefined {
  return prestarted.shift();
}
