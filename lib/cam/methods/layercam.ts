import type { MethodDef } from './types';

/** Jiang et al. 2021: cam = Σ_k max(G,0)·A. */
export const layercam = {
  name: 'layercam',
  title: 'LayerCAM',
  summary: 'positive gradients x activations, element-wise (Jiang et al.)',
  cam: { kind: 'elementwise', op: 'relu-grad-times-act', f: (g, a) => Math.max(g, 0) * a },
  layerGrads: true,
} as const satisfies MethodDef;
