import type { MethodDef } from './types';

/** Simonyan et al. 2014: the plain gradient of the score with respect to the input pixels. */
export const saliency = {
  name: 'saliency',
  title: 'Saliency (input gradient)',
  summary: 'plain input gradient dY/dx (Simonyan et al.)',
  layerGrads: false,
  inputGradient: 'plain',
} as const satisfies MethodDef;
