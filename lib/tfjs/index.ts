/**
 * TensorFlow.js models: Grad-CAM, Guided Backpropagation and Guided Grad-CAM for LayersModels,
 * GraphModels and user-split models, on the best installed engine (tfjs-node ▸ wasm ▸ cpu).
 */
import './tfjs-present'; // first: a missing @tensorflow/tfjs is GradcamError ENOENGINE
import * as tf from '@tensorflow/tfjs';
import { GradcamError, invalidType } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch } from '../types';
import { selectTfjsEngine, TFJS_ENGINE_PREFERENCES, type TfjsEnginePreference } from './engine';
import { ProgramSource, SplitSource, TfjsExplainer, type SplitModel } from './explainer';
import { graphProgram, inferShapes } from './graph-adapter';
import { layersProgram } from './layers-adapter';
import { evaluate } from './program';
import { PLAIN } from './ops';
import { checkOneOf } from '../errors';
import { loadTfjsModel } from './loader';

export { selectTfjsEngine, currentTfjsEngine, registerWasmGradientKernels, WASM_MISSING_GRADIENT_KERNELS } from './engine';
export type { TfjsEngine, TfjsEnginePreference } from './engine';
export { loadTfjsModel, readModelArtifacts } from './loader';
export type { SplitModel } from './explainer';

export interface TfjsExplainerOptions {
  /** gradient engine; default 'auto' (tfjs-node ▸ wasm ▸ cpu) */
  engine?: TfjsEnginePreference;
  /** GraphModel only: the node whose output is the logits (default: the input of the final Softmax) */
  logitsNode?: string;
}

function isLayersModel(m: unknown): m is tf.LayersModel {
  return m instanceof tf.LayersModel || (typeof m === 'object' && m !== null && Array.isArray((m as tf.LayersModel).layers) && 'outputs' in m);
}

function isGraphModel(m: unknown): m is tf.GraphModel {
  return m instanceof tf.GraphModel || (typeof m === 'object' && m !== null && typeof (m as tf.GraphModel).executeAsync === 'function');
}

function isSplitModel(m: unknown): m is SplitModel {
  return typeof m === 'object' && m !== null && typeof (m as SplitModel).features === 'function' && typeof (m as SplitModel).head === 'function';
}

/** An Explainer for a tfjs model, which also takes a 4-D NHWC tf.Tensor as input. */
export interface TfjsModelExplainer extends Explainer {
  explain(input: InputBatch | tf.Tensor, options?: ExplainOptions): Promise<ExplainResult>;
}

/**
 * An Explainer for a tfjs model. LayersModels and GraphModels run through an interpreter of their
 * layers/ops (every ReLU guidable, unfused convolutions); a SplitModel ({ features, head }) gets
 * Grad-CAM on the activation between its two halves.
 */
export async function createTfjsExplainer(
  model: tf.LayersModel | tf.GraphModel | SplitModel,
  options: TfjsExplainerOptions = {},
): Promise<TfjsModelExplainer> {
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
  const pref = options.engine === undefined ? 'auto' : checkOneOf('engine', options.engine, TFJS_ENGINE_PREFERENCES);
  if (options.logitsNode !== undefined && typeof options.logitsNode !== 'string') throw invalidType('logitsNode', 'string', options.logitsNode);
  const engine = await selectTfjsEngine(pref);
  if (isSplitModel(model)) return new TfjsExplainer(new SplitSource(model), engine);
  if (isLayersModel(model)) {
    if (options.logitsNode !== undefined) throw Object.assign(new RangeError('Expected no logitsNode for a LayersModel (GraphModels only)'), { code: 'EARGRANGE' });
    return new TfjsExplainer(new ProgramSource(layersProgram(model)), engine);
  }
  if (isGraphModel(model)) {
    const program = graphProgram(model, options.logitsNode);
    inferShapes(program, (x) => {
      const values = new Map<string, tf.Tensor>([[program.inputKey, x]]);
      evaluate(program, values, PLAIN);
      return values;
    });
    return new TfjsExplainer(new ProgramSource(program), engine);
  }
  throw invalidType('model', 'tf.LayersModel, tf.GraphModel or { features, head }', model);
}

/**
 * An Explainer for the tfjs model at `file` (model.json, its folder, or a UMD .js model), which it
 * owns: dispose() frees the model's weights as well. (A model passed to createTfjsExplainer stays
 * the caller's and is never disposed by the explainer.)
 */
export async function createTfjsExplainerOwning(file: string, options: TfjsExplainerOptions = {}): Promise<TfjsModelExplainer> {
  const model = await loadTfjsModel(file);
  let explainer: TfjsModelExplainer;
  try {
    explainer = await createTfjsExplainer(model, options);
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

export { GradcamError };
