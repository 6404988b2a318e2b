/**
 * ONNX models: gradients computed by ONNX Runtime itself on a backward graph appended to the model.
 */
export { createOnnxExplainer, functionalRelus, listOnnxLayers, OnnxExplainer } from './explainer';
export type { OnnxExplainerOptions } from './explainer';
export { OnnxGradientSession, createOrtSession } from './session';
export type { GradientRun, GradientSessionOptions, LayerGradients, ExecutionProviderRequest } from './session';
export { buildGradientModel, checkDifferentiable, RELU_RULES, RULES } from './backward';
export type { BackwardOptions, GradientModel, ReluRule } from './backward';
export { GraphIndex, inferShapes } from './graph';
export { cudaProvider } from './runtime';
