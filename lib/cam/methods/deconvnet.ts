import type { MethodDef } from './types';

/** Zeiler & Fergus 2014: every ReLU passes the positive part of the incoming gradient back. */
export const deconvnet = {
  name: 'deconvnet',
  title: 'Deconvnet',
  summary: 'input gradient where each ReLU passes max(grad, 0) back (Zeiler & Fergus)',
  layerGrads: false,
  inputGradient: 'deconvnet',
} as const satisfies MethodDef;
