import type { MethodDef } from './types';

/**
 * Chattopadhyay et al. 2018, in pytorch-grad-cam's form: a_ij = G²/(2G² + Σ_ij A·G³ + 1e-6) (0 where
 * G = 0), w_k = Σ_ij max(G,0)·a_ij. The original authors also divide a_ij by its spatial sum per
 * channel: `gradcamPlusPlus: 'original'` (the explain option) selects that weighting instead.
 */
export const gradcamPlusPlus = {
  name: 'gradcam++',
  title: 'Grad-CAM++',
  summary: 'second-order pixel weights on positive gradients (Chattopadhyay et al.)',
  cam: { kind: 'weights', weighting: 'grad-pp', eps: 1e-6 },
  layerGrads: true,
} as const satisfies MethodDef;
