/**
 * gradcam-node: Grad-CAM, Guided Backpropagation and Guided Grad-CAM for Node.js.
 *
 *   const explainer = await createExplainer('model.onnx');     // or model.json, or a tfjs model
 *   const result = await explainer.explain(batch, { method: 'guided-gradcam', targets: { topK: 3 } });
 *
 * The model adapters are loaded lazily: an ONNX user never pays for loading TensorFlow.js.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GradcamError, invalidType } from './errors';
import type { Explainer } from './types';
import type { SplitModel, TfjsExplainerOptions } from './tfjs';
import type { OnnxExplainerOptions } from './onnx';

export * from './types';
export { GradcamError, ERROR_CODES } from './errors';
export type { ErrorCode } from './errors';
export { writeFileAtomic, writeFileAtomicSync } from './io/atomic';
export { getKernels, kernelInfo } from './kernels';
export type { Kernels, KernelsAsync, KernelsSync, PictureKernelsSync, ShowCamOnImageOptions } from './kernels';
export { resolveTargets, targetRounds } from './cam/targets';
export { explainStream } from './cam/stream';
export type { StreamBatch, StreamInput, StreamItem, StreamOptions } from './cam/stream';
export * from './image';

export type CreateExplainerOptions = TfjsExplainerOptions & OnnxExplainerOptions;
export type { SplitModel, TfjsExplainerOptions, TfjsModelExplainer } from './tfjs';
export type { OnnxExplainerOptions } from './onnx';

/** A tfjs LayersModel or GraphModel (duck-typed so that this module does not load tfjs). */
interface TfjsModelLike {
  predict?: unknown;
  execute?: unknown;
}

function isTfjsModel(m: object): boolean {
  const o = m as TfjsModelLike & SplitModel;
  return typeof o.predict === 'function' || typeof o.execute === 'function'
    || (typeof o.features === 'function' && typeof o.head === 'function');
}

/** Errors about a model's contents name its file (a truncated download says which one it is). */
async function namingFile<T>(file: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (e) {
    const err = e as Error & { code?: string };
    const aboutModel = err instanceof SyntaxError || ['EBADMODEL', 'EMODEL', 'EORT'].includes(err?.code as string);
    if (aboutModel && typeof err.message === 'string' && !err.message.includes(file)) err.message = `${file}: ${err.message}`;
    throw e;
  }
}

/**
 * An Explainer for a model given as:
 *  - a path to an `.onnx` file, or its bytes (Uint8Array): gradients from ONNX Runtime;
 *  - a path to a tfjs `model.json` (or a folder holding one), a tfjs LayersModel or GraphModel,
 *    or a SplitModel { features, head }: gradients from TensorFlow.js.
 */
export async function createExplainer(
  model: string | Uint8Array | object,
  options: CreateExplainerOptions = {},
): Promise<Explainer> {
  if (typeof model === 'string') {
    let file = model;
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
      const candidates = ['model.json', ...fs.readdirSync(file).filter((f) => f.endsWith('.onnx'))];
      const found = candidates.find((f) => fs.existsSync(path.join(file, f)));
      if (!found) throw new GradcamError(`No model.json or .onnx file in the folder ${file}`, 'ENOENT');
      file = path.join(file, found);
    }
    if (!fs.existsSync(file)) throw new GradcamError(`Model file not found: ${file}`, 'ENOENT');
    if (file.toLowerCase().endsWith('.onnx')) {
      const { createOnnxExplainer } = await import('./onnx');
      return namingFile(file, () => createOnnxExplainer(file, options));
    }
    if (file.toLowerCase().endsWith('.json')) {
      // the model is loaded here, so it is the explainer's: dispose() frees its weights too
      const { createTfjsExplainerOwning } = await import('./tfjs');
      return namingFile(file, () => createTfjsExplainerOwning(file, options));
    }
    throw new GradcamError(`Cannot tell the format of ${file}: expected a .onnx file or a tfjs model.json`, 'EFORMAT');
  }
  if (model instanceof Uint8Array) {
    const { createOnnxExplainer } = await import('./onnx');
    return createOnnxExplainer(model, options);
  }
  if (typeof model === 'object' && model !== null && isTfjsModel(model)) {
    const { createTfjsExplainer } = await import('./tfjs');
    return createTfjsExplainer(model as Parameters<typeof createTfjsExplainer>[0], options);
  }
  throw invalidType('model', 'ONNX path or bytes, tfjs model.json path, tfjs LayersModel/GraphModel or { features, head }', model);
}
