/**
 * The worker-thread side of TfjsWorkerAdapter (worker-adapter.ts): loads the model (from its path,
 * or from the artifacts the main thread serialized), chooses the engine, and serves begin / round /
 * release for the shared pipeline running in the main thread. Messages are handled one at a time,
 * in order; results go back as transferred ArrayBuffers.
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { AdapterPass } from '../cam/adapter';
import { sourceOf } from './build';
import { autoEngineNote, reportEngineChoiceFromHere, selectTfjsEngine } from './engine';
import { TfjsAdapter, modelInfo } from './explainer';
import { loadTfjsModel } from './loader';
import { toWire, type FromWorker, type ToWorker, type TfjsWorkerInit } from './worker-protocol';

/** The distinct buffers of some arrays, to transfer (each array is the worker's own copy). */
function buffersOf(arrays: Array<Float32Array | undefined>): ArrayBuffer[] {
  const set = new Set<ArrayBuffer>();
  for (const a of arrays) if (a && a.buffer instanceof ArrayBuffer) set.add(a.buffer);
  return [...set];
}

async function main(): Promise<void> {
  if (!parentPort) return;
  const port = parentPort;
  const init = workerData as TfjsWorkerInit;
  reportEngineChoiceFromHere(false); // the main thread reports it, once per process
  // tfjs's own console advice (the "install tfjs-node" banner of the cpu backend) would repeat for
  // every explainer's worker: PROD mode silences tfjs's warnings here (it changes no computation)
  tf.env().set('PROD', true);
  let adapter: TfjsAdapter;
  let model: tf.LayersModel | tf.GraphModel;
  let baselineTensors: number;
  try {
    const engine = await selectTfjsEngine(init.engine);
    if (init.file !== undefined) model = await loadTfjsModel(init.file);
    else {
      const handler = tf.io.fromMemory(init.artifacts as tf.io.ModelArtifacts);
      model = init.graph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
    }
    try {
      adapter = new TfjsAdapter(sourceOf(model, init.logitsNode), engine, 'a worker thread');
    } catch (e) {
      model.dispose();
      throw e;
    }
    baselineTensors = tf.memory().numTensors;
    const ready: FromWorker = { ready: true, info: modelInfo(adapter.source), engine, note: init.engine === 'auto' ? autoEngineNote() : undefined };
    port.postMessage(ready);
  } catch (e) {
    port.postMessage({ ready: false, error: toWire(e) } satisfies FromWorker);
    return;
  }

  const passes = new Map<number, AdapterPass>();
  let nextPass = 0;
  const reply = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  async function handle(m: ToWorker): Promise<void> {
    switch (m.op) {
      case 'begin': {
        const pass = await adapter.begin(m.batch, m.request);
        const id = nextPass++;
        passes.set(id, pass);
        // the arrays are this pass's own copies: moved to the main thread, not copied
        reply({ id: m.id, pass: id, logits: pass.logits, numClasses: pass.numClasses, activations: pass.activations },
          buffersOf([pass.logits, ...pass.activations.map((a) => a.data)]));
        return;
      }
      case 'round': {
        const pass = passes.get(m.pass);
        if (!pass) throw new Error(`no forward pass ${m.pass} in the worker thread`);
        const r = await pass.round(m.classes);
        reply({ id: m.id, layerGrads: r.layerGrads, inputGradient: r.inputGradient }, buffersOf([...r.layerGrads, r.inputGradient]));
        return;
      }
      case 'release':
        passes.get(m.pass)?.release();
        passes.delete(m.pass);
        return;
      case 'memory': {
        const mem = tf.memory();
        reply({ id: m.id, numTensors: mem.numTensors, numBytes: mem.numBytes, baselineTensors, passes: passes.size });
        return;
      }
      case 'dispose':
        for (const p of passes.values()) p.release();
        passes.clear();
        adapter.dispose();
        model.dispose();
        port.close();
        process.exit(0);
    }
  }

  let queue = Promise.resolve();
  port.on('message', (m: ToWorker) => {
    queue = queue.then(() => handle(m)).catch((e: unknown) => {
      if ('id' in m) reply({ id: m.id, error: toWire(e) });
    });
  });
}

void main();
