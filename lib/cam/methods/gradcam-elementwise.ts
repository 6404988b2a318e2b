import type { MethodDef } from './types';

/** pytorch-grad-cam's GradCAMElementWise: cam = Σ_k max(G·A, 0). */
export const gradcamElementwise = {
  name: 'gradcam-elementwise',
  title: 'Grad-CAM element-wise',
  summary: 'positive part of gradient x activation, summed over channels',
  cam: { kind: 'elementwise', op: 'relu-of-grad-times-act', f: (g, a) => Math.max(g * a, 0) },
  layerGrads: true,
} as const satisfies MethodDef;
