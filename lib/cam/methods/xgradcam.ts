import type { MethodDef } from './types';

/** Fu et al. 2020: w_k = Σ_ij G·A / (Σ_ij A + eps). */
export const xgradcam = {
  name: 'xgradcam',
  title: 'XGrad-CAM',
  summary: 'gradients weighted by the normalized activations (Fu et al.)',
  cam: { kind: 'weights', weighting: 'grad-act-ratio', eps: 1e-7 },
  layerGrads: true,
} as const satisfies MethodDef;
