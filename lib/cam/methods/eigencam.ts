import type { MethodDef } from './types';

/** Muhammad & Yeasin 2020: the first principal component of the activations (class-independent, no gradient). */
export const eigencam = {
  name: 'eigencam',
  title: 'Eigen-CAM',
  summary: 'first principal component of the activations (class-independent)',
  cam: { kind: 'projection', of: 'activations' },
  layerGrads: false,
} as const satisfies MethodDef;
