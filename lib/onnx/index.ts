/**
 * ONNX models: gradients computed by ONNX Runtime itself on a backward graph appended to the model.
 */
// first: a missing onnxruntime-node is GradcamError ENOENGINE, not MODULE_NOT_FOUND
import './ort-present';

export { createOnnxExplainer, functionalRelus, listOnnxLayers, OnnxExplainer } from './explainer';
export type { OnnxExplainerOptions } from './explainer';
export { OnnxGradientSession, createOrtSession } from './session';
export type { GradientRun, GradientSessionOptions, LayerGradients, ExecutionProviderRequest } from './session';
export { buildGradientModel, checkDifferentiable, RELU_RULES, RULES } from './backward';
export type { BackwardOptions, GradientModel, ReluRule } from './backward';
export { GraphIndex, inferShapes } from './graph';
export { cudaProvider } from './runtime';
export { ModelCache, cacheStats, defaultCacheDir, CACHE_FORMAT, DEFAULT_CACHE_MAX_BYTES } from './cache';
export type { CacheOptions, CacheStats, GradientModelInfo } from './cache';
