import type { MethodDef } from './types';

/** Selvaraju et al. 2017: w_k = mean_ij dY/dA_k. */
export const gradcam = {
  name: 'gradcam',
  title: 'Grad-CAM',
  summary: 'channel weights = spatial mean of dY/dA (Selvaraju et al.)',
  cam: { kind: 'weights', weighting: 'grad-mean', eps: 0 },
  layerGrads: true,
} as const satisfies MethodDef;
