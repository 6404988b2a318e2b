import type { MethodDef } from './types';

/** Draelos & Carin 2020: cam = Σ_k G·A, element-wise (no spatial averaging of the gradient). */
export const hirescam = {
  name: 'hirescam',
  title: 'HiResCAM',
  summary: 'element-wise gradient x activation, summed over channels (Draelos & Carin)',
  cam: { kind: 'elementwise', op: 'grad-times-act', f: (g, a) => g * a },
  layerGrads: true,
} as const satisfies MethodDef;
