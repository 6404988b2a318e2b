import type { MethodDef } from './types';
import { gradcam } from './gradcam';

/** The paper's Guided Grad-CAM: Grad-CAM's map times guided backprop (any CAM method takes `guided: true` too). */
export const guidedGradcam = {
  ...gradcam,
  name: 'guided-gradcam',
  title: 'Guided Grad-CAM',
  summary: 'Grad-CAM map x guided backprop (Selvaraju et al.)',
  guidedOf: gradcam.name,
} as const satisfies MethodDef;
