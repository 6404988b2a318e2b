/**
 * TensorFlow.js models: Grad-CAM, Guided Backpropagation and Guided Grad-CAM for LayersModels,
 * GraphModels and user-split models, on the best installed engine (tfjs-node ▸ wasm ▸ cpu).
 */
import './tfjs-present'; // first: a missing @tensorflow/tfjs is GradcamError ENOENGINE
import * as tf from '@tensorflow/tfjs';
import { GradcamError, checkOneOf, describe, invalidType, rangeErrorOf } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch } from '../types';
import { isGraphModel, isLayersModel, isSplitModel, sourceOf } from './build';
import { selectTfjsEngine, TFJS_ENGINE_PREFERENCES, type TfjsEnginePreference } from './engine';
import { TfjsAdapter, TfjsExplainer, type SplitModel, type TfjsThread } from './explainer';
import { loadTfjsModel } from './loader';
import { TfjsWorkerAdapter, workerScriptPresent, type LocalAdapter } from './worker-adapter';
import type { TfjsWorkerInit, WorkerMemory } from './worker-protocol';

export { selectTfjsEngine, currentTfjsEngine, registerWasmGradientKernels, WASM_MISSING_GRADIENT_KERNELS } from './engine';
export type { TfjsEngine, TfjsEnginePreference } from './engine';
export { loadTfjsModel, readModelArtifacts } from './loader';
export type { SplitModel, TfjsThread } from './explainer';
export type { WorkerMemory } from './worker-protocol';

export interface TfjsExplainerOptions {
  /** gradient engine; default 'auto' (tfjs-node ▸ wasm ▸ cpu), chosen in the thread that computes */
  engine?: TfjsEnginePreference;
  /** GraphModel only: the node whose output is the logits (default: the input of the final Softmax) */
  logitsNode?: string;
  /**
   * 1 (default): the model computes in a worker thread, so explain() leaves the event loop free;
   * the batch is copied into it once per call, results come back without copies. A model object
   * is serialized once (model.save) and loaded there; a SplitModel, or a model that cannot be
   * serialized, computes in this thread (see explainer.thread / threadReason).
   * 0: in this thread, as the event loop's own work: each forward and backward pass blocks it.
   */
  workers?: number;
}

/** An Explainer for a tfjs model, which also takes a 4-D NHWC tf.Tensor as input. */
export interface TfjsModelExplainer extends Explainer {
  explain(input: InputBatch | tf.Tensor, options?: ExplainOptions): Promise<ExplainResult>;
  /** 'worker' (the default) or 'main': where the model computes */
  readonly thread: TfjsThread;
  /** why it computes there */
  readonly threadReason: string;
}

interface Checked { pref: TfjsEnginePreference; logitsNode?: string; workers: 0 | 1 }

function checkOptions(options: TfjsExplainerOptions): Checked {
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
  const pref = options.engine === undefined ? 'auto' : checkOneOf('engine', options.engine, TFJS_ENGINE_PREFERENCES);
  if (options.logitsNode !== undefined && typeof options.logitsNode !== 'string') throw invalidType('logitsNode', 'string', options.logitsNode);
  const w = options.workers;
  if (w !== undefined && w !== 0 && w !== 1) {
    throw rangeErrorOf(`Expected 0 (this thread) or 1 (a worker thread) for workers but received ${describe(w)}: a tfjs model computes in one worker thread`);
  }
  return { pref, logitsNode: options.logitsNode, workers: w === 0 ? 0 : 1 };
}

/** An explainer computing in this thread. */
async function inThread(model: tf.LayersModel | tf.GraphModel | SplitModel, c: Checked, reason: string): Promise<TfjsExplainer> {
  const engine = await selectTfjsEngine(c.pref);
  return new TfjsExplainer(new TfjsAdapter(sourceOf(model, c.logitsNode), engine, reason));
}

/** The in-thread adapter for custom-score calls of a worker explainer (its model stays whoever's it was). */
async function localAdapter(model: tf.LayersModel | tf.GraphModel, c: Checked, owned: boolean): Promise<LocalAdapter> {
  try {
    const adapter = new TfjsAdapter(sourceOf(model, c.logitsNode), await selectTfjsEngine(c.pref), 'a custom score function (this call)');
    return { adapter, dispose: () => { adapter.dispose(); if (owned) model.dispose(); } };
  } catch (e) {
    if (owned) model.dispose();
    throw e;
  }
}

/** topology + weight specs + weight data of a Layers or Graph model (model.save to memory). */
async function serialize(model: tf.LayersModel | tf.GraphModel): Promise<{ artifacts: tf.io.ModelArtifacts; transfer: ArrayBuffer[] }> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  if (!saved || !saved.modelTopology) throw new Error('model.save gave no topology');
  const data = saved.weightData;
  const joined = data === undefined ? undefined : Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  // a LayersModel encodes fresh weight data (ours to move); a GraphModel gives its own (copied across)
  const fresh = isLayersModel(model) || Array.isArray(data);
  return { artifacts: { ...saved, weightData: joined }, transfer: fresh && joined ? [joined] : [] };
}

/**
 * An Explainer for a tfjs model. LayersModels and GraphModels run through an interpreter of their
 * layers/ops (every ReLU guidable, unfused convolutions), by default in a worker thread (a copy of
 * the model, loaded there from model.save's artifacts; the model passed in stays the caller's); a
 * SplitModel ({ features, head }) gets Grad-CAM on the activation between its two halves, in this
 * thread.
 */
export async function createTfjsExplainer(
  model: tf.LayersModel | tf.GraphModel | SplitModel,
  options: TfjsExplainerOptions = {},
): Promise<TfjsModelExplainer> {
  const c = checkOptions(options);
  if (isSplitModel(model)) return inThread(model, c, 'a SplitModel ({ features, head }) is functions, which cannot cross to a worker thread');
  if (!isLayersModel(model) && !isGraphModel(model)) throw invalidType('model', 'tf.LayersModel, tf.GraphModel or { features, head }', model);
  if (isLayersModel(model) && c.logitsNode !== undefined) throw rangeErrorOf('Expected no logitsNode for a LayersModel (GraphModels only)');
  if (c.workers === 0) return inThread(model, c, 'workers: 0');
  if (!workerScriptPresent()) return inThread(model, c, 'the worker script is missing (the .ts sources run without a build)');
  let serialized: Awaited<ReturnType<typeof serialize>>;
  try {
    serialized = await serialize(model);
  } catch (e) {
    return inThread(model, c, `the model could not be serialized for a worker thread (${(e as Error).message})`);
  }
  const init: TfjsWorkerInit = { artifacts: serialized.artifacts, graph: isGraphModel(model), engine: c.pref, logitsNode: c.logitsNode };
  let adapter: TfjsWorkerAdapter;
  try {
    adapter = await TfjsWorkerAdapter.start(init, () => localAdapter(model, c, false), serialized.transfer);
  } catch (e) {
    // e.g. a custom layer class registered in this thread only; a model that cannot be explained
    // at all fails again here with its own error
    return inThread(model, c, `the worker thread could not load the model (${(e as Error).message})`);
  }
  return new TfjsExplainer(adapter);
}

/**
 * An Explainer for the tfjs model at `file` (model.json, its folder, or a UMD .js model), which it
 * owns: dispose() frees the model's weights as well. By default the worker thread loads the model
 * itself. (A model passed to createTfjsExplainer stays the caller's and is never disposed by the
 * explainer.)
 */
export async function createTfjsExplainerOwning(file: string, options: TfjsExplainerOptions = {}): Promise<TfjsModelExplainer> {
  const c = checkOptions(options);
  if (c.workers === 1 && workerScriptPresent()) {
    if (typeof file !== 'string' || file.length === 0) throw invalidType('pathOrUrl', 'path or URL of a model.json', file);
    const local = async () => localAdapter(await loadTfjsModel(file), c, true);
    return new TfjsExplainer(await TfjsWorkerAdapter.start({ file, engine: c.pref, logitsNode: c.logitsNode }, local));
  }
  const model = await loadTfjsModel(file);
  let explainer: TfjsModelExplainer;
  try {
    explainer = await createTfjsExplainer(model, { ...options, workers: 0 });
  } catch (e) {
    model.dispose();
    throw e;
  }
  const disposeExplainer = explainer.dispose.bind(explainer);
  let disposed = false;
  explainer.dispose = () => {
    disposeExplainer();
    if (disposed) return;
    disposed = true;
    model.dispose();
  };
  return explainer;
}

/** Debugging and tests: tf.memory() in a worker explainer's thread (undefined for one in this thread). */
export function workerMemory(explainer: Explainer): Promise<WorkerMemory> | undefined {
  const adapter = (explainer as Partial<TfjsExplainer>).adapter;
  return adapter instanceof TfjsWorkerAdapter ? adapter.workerMemory() : undefined;
}

export { GradcamError };
