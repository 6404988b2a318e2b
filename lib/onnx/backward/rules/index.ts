/**
 * One backward rule per op. A rule receives the gradient of the node's outputs and returns the
 * gradient of its differentiable inputs (see Rule in common.ts).
 */
import { ACTIVATION_RULES } from './activation';
import { Rule } from './common';
import { CONV_RULES } from './conv';
import { ELEMENTWISE_RULES } from './elementwise';
import { MATMUL_RULES } from './matmul';
import { NORMALIZATION_RULES } from './normalization';
import { POOLING_RULES } from './pooling';
import { RESIZE_RULES } from './resize';
import { SHAPE_RULES } from './shape';

export type { Grad, PassMode, ReluRule, Rule } from './common';
export { PLAIN_PASS, RELU_RULES } from './common';
export { maxPoolOverlaps } from './pooling';

export const RULES: Record<string, Rule> = {
  ...SHAPE_RULES, ...ACTIVATION_RULES, ...ELEMENTWISE_RULES, ...MATMUL_RULES, ...CONV_RULES,
  ...NORMALIZATION_RULES, ...POOLING_RULES, ...RESIZE_RULES,
};
