import type { MethodDef } from './types';

/** Springenberg et al. 2015: every ReLU passes grad·(x>0)·(grad>0) back. */
export const guidedBackprop = {
  name: 'guided-backprop',
  title: 'Guided Backpropagation',
  summary: 'input gradient through guided ReLUs (Springenberg et al.)',
  layerGrads: false,
  inputGradient: 'guided',
} as const satisfies MethodDef;
