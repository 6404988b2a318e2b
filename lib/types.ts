/**
 * The public vocabulary shared by every model adapter (tfjs, ONNX), the CAM pipeline and the CLI.
 * A method never knows which model format produced A and dY/dA; an adapter never knows which
 * method will use them.
 */
import type { DeviceRequest, KernelDevice, Layout } from './kernels/types';

export type { DeviceRequest, KernelDevice, Layout } from './kernels/types';

/** The paper's three maps. Adapters may offer more CAM variants later (gradcam++, xgradcam, hirescam, layercam). */
export type Method = 'gradcam' | 'guided-backprop' | 'guided-gradcam';
export const METHODS: readonly Method[] = ['gradcam', 'guided-backprop', 'guided-gradcam'];

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
  /** target layer (tfjs layer/node name, or ONNX tensor name). Default: the adapter's defaultLayer. */
  layer?: string;
  /** default 'gradcam' */
  method?: Method;
  /** default 'argmax' */
  targets?: TargetSpec;
  /** explain the negative score: the regions whose removal would raise the class score (paper section 5.1... counterfactuals) */
  counterfactual?: boolean;
  /** kernel device for the CAM steps; default 'auto' */
  device?: DeviceRequest;
  /** guide ReLU6 / Clip(0,6) like ReLU in guided backprop (default false, as pytorch-grad-cam and Captum) */
  guidedRelu6?: boolean;
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
  /** [k] channel weights alpha (gradcam methods) */
  weights?: Float32Array;
  /** [h,w] sum_k alpha_k A_k before ReLU: Captum's unnormalized LayerGradCam */
  lowresRaw?: Float32Array;
  /** [h,w] after ReLU and per-image min-max normalization */
  lowres?: Float32Array;
  /** [H,W] normalized map upsampled to the input size (pytorch-grad-cam's final map) */
  map?: Float32Array;
  /** input gradient with guided ReLU, in the input's layout, [c,H,W] or [H,W,c] */
  guidedBackprop?: Float32Array;
  /** map x guidedBackprop, broadcast over channels, in the input's layout */
  guidedGradcam?: Float32Array;
}

export interface ExplainResult {
  method: Method;
  layer: string;
  counterfactual: boolean;
  inputShape: [number, number, number, number];
  layout: Layout;
  /** feature-map size at the target layer */
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
  dispose(): void;
}
