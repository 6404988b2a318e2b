/**
 * A tfjs model object -> the GradientSource the adapter computes with; shared by the in-thread
 * explainer (index.ts) and the worker thread (worker.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { invalidType, rangeErrorOf } from '../errors';
import { ProgramSource, SplitSource, type SplitModel } from './explainer';
import { graphProgram, inferShapes } from './graph-adapter';
import { layersProgram } from './layers-adapter';
import { PLAIN } from './ops';
import { evaluate } from './program';

export function isLayersModel(m: unknown): m is tf.LayersModel {
  return m instanceof tf.LayersModel || (typeof m === 'object' && m !== null && Array.isArray((m as tf.LayersModel).layers) && 'outputs' in m);
}

export function isGraphModel(m: unknown): m is tf.GraphModel {
  return m instanceof tf.GraphModel || (typeof m === 'object' && m !== null && typeof (m as tf.GraphModel).executeAsync === 'function');
}

export function isSplitModel(m: unknown): m is SplitModel {
  return typeof m === 'object' && m !== null && typeof (m as SplitModel).features === 'function' && typeof (m as SplitModel).head === 'function';
}

/** The gradient source of a model; its logitsNode was checked by the caller. */
export function sourceOf(model: tf.LayersModel | tf.GraphModel | SplitModel, logitsNode?: string): ProgramSource | SplitSource {
  if (isSplitModel(model)) return new SplitSource(model);
  if (isLayersModel(model)) {
    if (logitsNode !== undefined) throw rangeErrorOf('Expected no logitsNode for a LayersModel (GraphModels only)');
    return new ProgramSource(layersProgram(model));
  }
  if (isGraphModel(model)) {
    const program = graphProgram(model, logitsNode);
    inferShapes(program, (x) => {
      const values = new Map<string, tf.Tensor>([[program.inputKey, x]]);
      evaluate(program, values, PLAIN);
      return values;
    });
    return new ProgramSource(program);
  }
  throw invalidType('model', 'tf.LayersModel, tf.GraphModel or { features, head }', model);
}
