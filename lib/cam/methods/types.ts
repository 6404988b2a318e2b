/**
 * What a method is: what it needs from the model adapter, and how the CAM kernels turn that into
 * a map. A method is data, never a code path: lib/cam/explain.ts reads these fields and nothing
 * else in the library tests a method's name.
 */
import type { ChannelWeighting, ElementwiseOp } from '../../kernels/types';

/**
 * The backward rule of every ReLU on the input-gradient path (the paper's Figure of the three rules),
 * for a ReLU with forward input x and incoming gradient g:
 *  - 'plain': g·(x>0), the true gradient (saliency, Simonyan et al.);
 *  - 'guided': g·(x>0)·(g>0) (guided backpropagation, Springenberg et al.);
 *  - 'deconvnet': max(g,0), whatever x (Zeiler & Fergus).
 */
export type ReluRule = 'plain' | 'guided' | 'deconvnet';
export const RELU_RULES: readonly ReluRule[] = ['plain', 'guided', 'deconvnet'];

export type { ChannelWeighting } from '../../kernels/types';

/** How a method forms its low-resolution map from A and G. */
export type CamRecipe =
  /** cam = sum_k w[n,k]·A[n,k] with channel weights from the kernels' reductions */
  | { kind: 'weights'; weighting: ChannelWeighting; eps: number }
  /** cam = sum_k f(G, A) element-wise */
  | { kind: 'elementwise'; op: ElementwiseOp; f: (g: number, a: number) => number }
  /** cam = the first principal component of the channels of A (or of G·A), per image */
  | { kind: 'projection'; of: 'activations' | 'grad-times-act' };

export interface MethodDef {
  /** the name users pass: `method` in the API, `--method` in the CLI, the stem of its `.npy` */
  readonly name: string;
  /** for reports and pictures */
  readonly title: string;
  /** one line for the CLI help */
  readonly summary: string;
  /** a CAM method's recipe; absent for the input-gradient methods */
  readonly cam?: CamRecipe;
  /** whether the recipe reads dY/dA (Eigen-CAM does not) */
  readonly layerGrads: boolean;
  /** an input-gradient method's ReLU rule (its map is the gradient itself) */
  readonly inputGradient?: ReluRule;
  /** a CAM method that always multiplies its map with guided backprop (Guided Grad-CAM): the CAM method it builds on */
  readonly guidedOf?: string;
}
