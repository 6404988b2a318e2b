/**
 * The public vocabulary shared by every model adapter (tfjs, ONNX), the CAM pipeline and the CLI.
 * A method never knows which model format produced A and dY/dA; an adapter never knows which
 * method will use them.
 */
import type { DeviceRequest, KernelDevice, Layout } from './kernels/types';

export type { DeviceRequest, KernelDevice, Layout } from './kernels/types';

import type { Method, ReluRule } from './cam/methods';

export type { Method, ReluRule } from './cam/methods';
export { METHOD_NAMES, RELU_RULES } from './cam/methods';

/** A batch of model inputs, already preprocessed: float32, C order, shape [n, c, H, W] (nchw) or [n, H, W, c] (nhwc). */
export interface InputBatch {
  data: Float32Array;
  shape: [number, number, number, number];
  layout: Layout;
}

/**
 * A custom differentiable score (TensorFlow.js models): given the logits of the images, a tf.Tensor2D
 * [n, numClasses], return a tf.Tensor1D [n], one score per image, built from tf operations (it is
 * differentiated). E.g. the margin of class 3 over class 5: `(l) => tf.sub(l.gather(3, 1), l.gather(5, 1))`
 * (on the wasm engine prefer slicing: `tf.slice(l, [0, 3], [-1, 1]).squeeze([1])`).
 */
export type ScoreFunction = (logits: any) => any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Which class(es) to explain, per image:
 *  - 'argmax' (default): the top class of each image
 *  - a number: that class for every image
 *  - an array of length n: one class (number) or several (number[]) per image
 *  - { topK: k }: the k best classes of each image
 */
export type TargetSpec =
  | 'argmax'
  | number
  | ReadonlyArray<number | readonly number[]>
  | { topK: number }
  /** a custom score (TensorFlow.js models only); its explanations have classIndex -1 and probability NaN */
  | { score: ScoreFunction };

export interface ExplainOptions {
  /**
   * target layer (tfjs layer/node name, or ONNX tensor name), or several: their maps are computed from
   * one forward and one backward pass, each scaled to the input size, clipped at 0, averaged and
   * normalized (pytorch-grad-cam's aggregation). Default: the adapter's defaultLayer.
   */
  layer?: string | readonly string[];
  /** one of METHOD_NAMES; default 'gradcam' */
  method?: Method;
  /** default 'argmax' */
  targets?: TargetSpec;
  /** explain the negative score: the regions whose removal would raise the class score (paper section 5.1... counterfactuals) */
  counterfactual?: boolean;
  /** kernel device for the CAM steps; default 'auto' */
  device?: DeviceRequest;
  /** apply the input-gradient ReLU rule to ReLU6 / Clip(0,6) too (default false, as pytorch-grad-cam and Captum) */
  guidedRelu6?: boolean;
  /** multiply a CAM method's map with guided backprop, as the paper does for Grad-CAM (guided-gradcam = gradcam + guided) */
  guided?: boolean;
  /**
   * test-time augmentation (pytorch-grad-cam's aug_smooth): horizontal flip x intensity factors 0.9, 1, 1.1,
   * run as one batch of six times the images; the six maps are de-augmented and averaged. The classes are
   * those of the unaugmented image (pytorch-grad-cam re-takes the argmax of every augmented copy).
   */
  augSmooth?: boolean;
  /** replace the channel sum by the first principal component of the weighted activations (pytorch-grad-cam's eigen_smooth) */
  eigenSmooth?: boolean;
  /**
   * Grad-CAM++'s pixel weights: 'pytorch-grad-cam' (default, a_ij as is) or 'original' (the authors' code:
   * a_ij divided by its spatial sum per channel)
   */
  gradcamPlusPlus?: 'pytorch-grad-cam' | 'original';
}

/** One (image, class) explanation. Arrays are views or copies owned by the result. */
export interface Explanation {
  /** index of the image in the batch */
  image: number;
  /** the class explained; -1 for a custom score function */
  classIndex: number;
  /** the raw pre-softmax score (logit) of that class, as differentiated (negated when counterfactual) */
  score: number;
  /** its softmax probability (NaN for a custom score function) */
  probability: number;
  /** [k] channel weights (the channel-weight CAM methods; one target layer, no augSmooth) */
  weights?: Float32Array;
  /** [h,w] the map before ReLU (Grad-CAM: sum_k alpha_k A_k, Captum's unnormalized LayerGradCam); one target layer */
  lowresRaw?: Float32Array;
  /** [h,w] after ReLU and per-image min-max normalization; one target layer */
  lowres?: Float32Array;
  /** with several target layers: each layer's maps */
  layerMaps?: LayerMaps[];
  /** [H,W] the CAM method's map at the input size, in [0,1] (pytorch-grad-cam's final map) */
  map?: Float32Array;
  /**
   * dY/dx, signed and raw, in the input's layout ([c,H,W] or [H,W,c]), under the ReLU rule in
   * result.reluRule: the map of saliency / deconvnet / guided-backprop, and the guided backprop of
   * a guided CAM method
   */
  inputGradient?: Float32Array;
  /** map x guided backprop, broadcast over channels, in the input's layout (guided-gradcam, or `guided: true`) */
  guidedMap?: Float32Array;
}

/** One target layer's part of a multi-layer explanation. */
export interface LayerMaps {
  layer: string;
  weights?: Float32Array;
  lowresRaw: Float32Array;
  lowres: Float32Array;
}

export interface ExplainResult {
  method: Method;
  /** the (first) target layer; '' for the input-gradient methods */
  layer: string;
  /** every target layer ([] for the input-gradient methods) */
  layers: string[];
  /** the ReLU rule of the input gradients (absent when none was computed) */
  reluRule?: ReluRule;
  /** the map was multiplied with guided backprop */
  guided: boolean;
  counterfactual: boolean;
  inputShape: [number, number, number, number];
  layout: Layout;
  /** feature-map size at the (first) target layer (zeros for the input-gradient methods) */
  mapSize: { h: number; w: number; k: number };
  /** [n, numClasses] raw logits and softmax probabilities of the batch */
  logits: Float32Array;
  probabilities: Float32Array;
  numClasses: number;
  /** one entry per (image, class), image-major */
  explanations: Explanation[];
  /** which gradient engine ran ('tfjs-node', 'tfjs-wasm', 'tfjs-cpu', 'onnxruntime-cpu', 'onnxruntime-cuda') */
  engine: string;
  /** which kernel device ran the CAM steps */
  device: KernelDevice;
  timings: { gradientsMs: number; kernelsMs: number; totalMs: number };
}

export interface LayerInfo {
  name: string;
  /** layer class or ONNX op type */
  type: string;
  /** output shape, -1 or null for unknown dims */
  shape: Array<number | null>;
  isDefault: boolean;
  /** ONNX: the PyTorch module paths whose output this tensor is (`layer4`, `layer4.1`), outermost first; also accepted as a layer name */
  modules?: string[];
}

/** What every model adapter offers. */
export interface Explainer {
  readonly engine: string;
  /** the input layout the model expects */
  readonly layout: Layout;
  /** the model's declared input shape in that layout, null where unknown (the batch size, symbolic sizes) */
  readonly inputShape: Array<number | null>;
  /** candidate target layers: every 4-D activation, with the default marked */
  layers(): LayerInfo[];
  readonly defaultLayer: string;
  explain(input: InputBatch, options?: ExplainOptions): Promise<ExplainResult>;
  /**
   * Builds ahead what explain() with these options needs, so the first call does not wait for it
   * (ONNX: the gradient session for the options' method and layers at `inputSize` [H, W], default
   * the model's declared size; tfjs: the model is ready at creation, nothing to build). Optional:
   * explain() builds what is missing. explainStream calls it while the first pictures decode.
   */
  prepare?(options?: ExplainOptions, inputSize?: [number, number]): Promise<void>;
  dispose(): void;
}
