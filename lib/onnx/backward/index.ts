/**
 * The backward-graph generator: appends to an ONNX model, as ordinary ONNX operators, the
 * gradient of Y = sign * sum_n logits[n, class_n] with respect to target tensors (the CAM
 * family's dY/dA, always with the plain ReLU rule) and, optionally, to the input with a chosen
 * ReLU rule: plain (the true gradient), guided (guided backprop) or deconvnet.
 * ONNX Runtime then runs forward and backward in one session run.
 *
 * New graph inputs:  gradcam_class int64 [N] (class per image; -1 = argmax computed in the
 *                    graph; any other negative value = no class, a zero seed row),
 *                    gradcam_sign float [] (+1, or -1 for counterfactual maps).
 * New graph outputs: gradcam_classes int64 [N] (the classes used), the target tensors
 *                    themselves (activations), gradcam_grad_<i> per target, gradcam_input_grad.
 *
 * One rule per op (RULES, rules/ by op family). A rule receives the gradient of the node's outputs and returns
 * the gradient of its differentiable inputs. Only the nodes between the sources (targets, or the
 * input for the full backward) and the logits are differentiated.
 */
export {
  BackwardOptions, CLASSES_OUTPUT, CLASS_INPUT, GradientModel, INPUT_GRAD_OUTPUT, SIGN_INPUT,
  buildGradientModel, checkDifferentiable, gradientPath, logitsOf,
} from './driver';
export { Builder } from './builder';
export { RELU_RULES, RULES, maxPoolOverlaps } from './rules';
export type { Grad, PassMode, ReluRule, Rule } from './rules';
