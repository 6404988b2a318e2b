/**
 * The small interface between the CAM pipeline (lib/cam/explain.ts) and a model format (tfjs,
 * ONNX). An adapter computes; it never knows which method will use what it computed, and the
 * pipeline never knows which format computed it.
 */
import type { FeatureShape } from '../kernels/types';
import type { InputBatch, LayerInfo, Layout, ScoreFunction } from '../types';
import type { ReluRule } from './methods';

/** What one explain call needs from the model. */
export interface GradientRequest {
  /** target layers whose activations (and, with layerGrads, dY/dA) are needed; [] = none */
  layers: string[];
  /** dY/dA at every requested layer */
  layerGrads: boolean;
  /** the input gradient dY/dx under this ReLU rule */
  inputGradient?: ReluRule;
  /** apply the input-gradient rule to ReLU6 / Clip(0,6) too */
  guidedRelu6: boolean;
  /** Y = -score */
  counterfactual: boolean;
  /** a custom differentiable score of the logits (adapters with supportsCustomScore) */
  score?: ScoreFunction;
}

/** A target layer's activations for the whole batch. */
export interface LayerActivations {
  name: string;
  shape: FeatureShape;
  data: Float32Array;
}

/** One backward round: the gradients of Y = Σ_n sign·score_n for one class per image. */
export interface RoundGradients {
  /** per image: the class differentiated, -1 = none (zero gradient) */
  classes: Int32Array;
  /** a custom score's value per image (then classes are all -1 and every image is explained) */
  scores?: Float32Array;
  /** dY/dA per requested layer, same order and layout as the activations (empty without layerGrads) */
  layerGrads: Float32Array[];
  /** dY/dx under the requested rule, in the input batch's layout */
  inputGradient?: Float32Array;
}

/** The model's work for one batch and one request: a forward pass, then backward rounds. */
export interface AdapterPass {
  /** [n, numClasses] logits of the batch (pre-softmax) */
  readonly logits: Float32Array;
  readonly numClasses: number;
  /** per requested layer */
  readonly activations: LayerActivations[];
  /** dY/dA and dY/dx for `classes` (per image; -1 = none) */
  round(classes: Int32Array): Promise<RoundGradients>;
  /** frees what the pass holds (tensors, buffers); called once, also after a failure */
  release(): void;
}

/**
 * Batched scoring: logits for many modified inputs, or for modified activations fed in at a layer
 * (Score-CAM, Ablation-CAM and the faithfulness metrics need it). Defined here; adapters implement
 * it as those methods arrive.
 */
export interface ScoringRequest {
  /** modified model inputs in the adapter's input layout, or activations at `layer` */
  batch: InputBatch | { layer: string; shape: FeatureShape; data: Float32Array };
}

export interface ModelAdapter {
  readonly engine: string;
  /** the model's input layout */
  readonly layout: Layout;
  /** the model's declared input shape in that layout, null where unknown */
  readonly inputShape: Array<number | null>;
  readonly defaultLayer: string;
  layers(): LayerInfo[];
  /** a `{ score }` target works (tfjs) */
  readonly supportsCustomScore: boolean;
  /** checks and returns the batch in a layout this adapter accepts (the pipeline copies it first) */
  checkInput(input: unknown): InputBatch;
  /** throws the error for a layer that cannot be explained by the request; returns the canonical name */
  resolveLayer(name: string): string;
  /** the error for a request the model cannot serve (e.g. an op without a guided rule), or undefined */
  unsupported(request: GradientRequest): Error | undefined;
  /**
   * How many activations on feature maps (4-D) between the input and the score follow the guided/deconvnet rule with
   * this guidedRelu6 setting (ReLUs; ReLU6/Clip only with guidedRelu6). Cheap, from the graph.
   * undefined: unknown. Optional: the pipeline warns once when it is 0 and guidedRelu6 would make it more (MobileNets).
   */
  ruleActivations?(guidedRelu6: boolean): number | undefined;
  /**
   * forward pass for the batch: logits and the requested activations. The batch is the pipeline's
   * own copy, not read again: an adapter may take its buffer (a worker thread's adapter transfers it).
   */
  begin(batch: InputBatch, request: GradientRequest): Promise<AdapterPass>;
  /** build ahead what begin() will need for this request at input size [H, W] (optional) */
  prepare?(request: GradientRequest, inputSize?: [number, number]): Promise<void>;
  /**
   * Optional: where the pipeline copies the batch (`length` floats), and the release of that array
   * once the call is over (no session run reads it then). An ONNX adapter with worker threads gives
   * SharedArrayBuffer memory reused from call to call: posting it to the worker shares it, so no
   * session run copies the batch. undefined: the pipeline copies into a new Float32Array.
   */
  inputArray?(length: number): { data: Float32Array; release(): void } | undefined;
  /** logits of modified inputs or activations (see ScoringRequest); optional until a method needs it */
  score?(request: ScoringRequest): Promise<Float32Array>;
  dispose(): void;
}
