import type { MethodDef } from './types';

/** pytorch-grad-cam's EigenGradCAM: the first principal component of G·A. */
export const eigengradcam = {
  name: 'eigengradcam',
  title: 'Eigen-Grad-CAM',
  summary: 'first principal component of gradient x activation',
  cam: { kind: 'projection', of: 'grad-times-act' },
  layerGrads: true,
} as const satisfies MethodDef;
