/**
 * ONNX Runtime sessions for generated forward+backward models: one session per (model, layers,
 * ReLU rule, input size), built once and reused; a batch runs in one session run.
 *
 * Note: onnxruntime-node 1.30's InferenceSession.run is synchronous native work wrapped in
 * setImmediate, so a run blocks the event loop for its duration (as does session creation).
 */
import { GradcamError, checkOneOf, checkPositiveInteger, invalidRange, invalidType } from '../errors';
import type { FeatureShape } from '../kernels/types';
import type { InputBatch, Layout } from '../types';
import { checkInputBatch } from '../cam/input';
import { BackwardOptions, RELU_RULES, ReluRule } from './backward';
import { GradientModelInfo, ModelCache, ModelLoader, openGradientModel } from './cache';
import { GraphIndex, Shape, inferShapes } from './graph';
import { ModelProto, loadModel } from './proto';
import { ExecutionProviderRequest, Runner, TensorData } from './runtime';

export { EXECUTION_PROVIDERS, createOrtSession, cudaProvider } from './runtime';
export type { ExecutionProviderRequest, OrtSession } from './runtime';

/** One target layer's tensors of a run: A and dY/dA, [N, C, H, W]. */
export interface LayerGradients {
  /** the target tensor's name */
  name: string;
  /** the activations A */
  activations: Float32Array;
  /** dY/dA, always with the plain ReLU rule (also in a session whose input gradient is guided or deconvnet) */
  grads: Float32Array;
  featureShape: FeatureShape;
}

export interface GradientRun {
  logits: Float32Array;
  numClasses: number;
  /** per target layer, in the order the session was created with (empty when it has none) */
  layers: LayerGradients[];
  /** dY/dinput with the session's ReLU rule, in the input's layout (when the session has inputGradient) */
  inputGradient?: Float32Array;
  /** the classes used per image (argmax filled in; negative = none) */
  classes: Int32Array;
}

export interface GradientSessionOptions {
  /**
   * target tensors (4-D activations), all computed in one session run; [] for none (input gradient
   * only). Default: [layer].
   */
  layers?: string[];
  /** one target tensor (when `layers` is not given); default: the model's default layer; null: none */
  layer?: string | null;
  /** also compute dY/dinput with this ReLU rule (see ReluRule); false (default): no input gradient */
  inputGradient?: false | ReluRule;
  /** Clip (ReLU6) follows the input gradient's ReLU rule as well (default false: plain) */
  guidedRelu6?: boolean;
  /** ReLU (or Clip) node names that keep the plain rule in the input gradient */
  unguidedNodes?: string[];
  executionProvider?: ExecutionProviderRequest;
  intraOpThreads?: number;
  /** the input's spatial size [H, W] when the model declares it symbolic */
  inputSize?: [number, number];
  /** the score tensor [N, classes]; default: the first output, or the input of a final Softmax */
  output?: string;
  /** strided Conv backward (see BackwardOptions) */
  stridedConv?: 'auto' | 'polyphase' | 'convtranspose';
  /**
   * 0 (default): run in this thread (no copies; a run blocks the event loop).
   * n >= 1: run in n worker threads sharing the cores (the event loop stays free; the input is copied once).
   */
  workers?: number;
  /** where the generated model and ORT's optimized one are kept between runs (cache.ts); default none */
  cache?: ModelCache;
}

/** The spatial size [H, W] of a 4-D input shape in its layout. */
export function spatialOf<T>(shape: readonly T[], layout: Layout): [T, T] {
  return layout === 'nchw' ? [shape[2], shape[3]] : [shape[1], shape[2]];
}

/** The shape with its spatial size set to [H, W]. */
export function withSpatial(shape: Shape, layout: Layout, [h, w]: readonly [number, number]): Shape {
  const s = shape.slice();
  if (layout === 'nchw') { s[2] = h; s[3] = w; } else { s[1] = h; s[2] = w; }
  return s;
}

/** Layout of a model's 4-D input: channels-last when dim 3 is 1..4 and dim 1 is not. */
export function inputLayout(shape: Shape): Layout {
  if (shape.length === 4 && shape[3] > 0 && shape[3] <= 4 && !(shape[1] > 0 && shape[1] <= 4)) return 'nhwc';
  return 'nchw';
}

function asModel(model: string | Uint8Array | ModelProto): ModelProto {
  if (typeof model === 'string' || model instanceof Uint8Array) return loadModel(model);
  if (model && typeof model === 'object' && 'graph' in model) return model as ModelProto;
  throw invalidType('model', 'ONNX file path, Uint8Array or ModelProto', model);
}

/** One ORT session of a generated forward+backward model. */
export class OnnxGradientSession {
  private disposed = false;

  private constructor(
    private readonly runner: Runner,
    readonly gradientModel: GradientModelInfo,
    /** the target layers, in the order of GradientRun.layers */
    readonly layers: readonly string[],
    readonly inputShape: Shape,
    readonly layout: Layout,
  ) {}

  get executionProvider(): string {
    return this.runner.executionProvider;
  }

  get engine(): string {
    return `onnxruntime-${this.runner.executionProvider}`;
  }

  get providerReason(): string {
    return this.runner.reason;
  }

  static async create(model: string | Uint8Array | ModelProto, opts: GradientSessionOptions = {}): Promise<OnnxGradientSession> {
    if (typeof opts !== 'object' || opts === null) throw invalidType('options', 'object', opts);
    const proto = asModel(model);
    const g = new GraphIndex(proto);
    const declared = g.inputShape();
    let shape = declared.slice();
    // a symbolic batch stays symbolic; a fixed one (often 1 in exports) is kept, and run() splits batches
    if (!(shape[0] > 0)) shape[0] = -1;
    const layout = inputLayout(declared);
    if (opts.inputSize) shape = withSpatial(shape, layout, opts.inputSize);
    if (spatialOf(shape, layout).some((v) => v < 0)) {
      throw new GradcamError(`The model's input ${g.input} has a symbolic spatial size; pass inputSize [H, W]`, 'ESHAPE');
    }
    const layers = targetLayers(g, shape, opts);
    return OnnxGradientSession.open(proto, { inputShape: shape, layout, layers }, opts);
  }

  /**
   * A session for target layers already checked against the model (an explainer's), at an input
   * shape with its spatial size set: the model is decoded (`model` called) only when its gradient
   * model is built, i.e. not when the cache has it.
   */
  static async open(model: ModelLoader, target: { inputShape: Shape; layout: Layout; layers: string[] }, opts: GradientSessionOptions = {}): Promise<OnnxGradientSession> {
    const { inputShape: shape, layout, layers } = target;
    const inputGradient = opts.inputGradient === undefined || opts.inputGradient === false ? false : checkOneOf('inputGradient', opts.inputGradient, RELU_RULES);
    if (!layers.length && !inputGradient) throw invalidRange('options', 'a layer or an inputGradient ReLU rule', opts);
    const bopts: BackwardOptions = {
      layers, inputGradient: !!inputGradient, reluRule: inputGradient || undefined,
      guidedRelu6: !!opts.guidedRelu6, unguidedNodes: opts.unguidedNodes ?? [], inputShape: shape,
      logits: opts.output, stridedConv: opts.stridedConv,
    };
    const workers = opts.workers === undefined || opts.workers === 0 ? 0 : checkPositiveInteger('workers', opts.workers);
    const ep = opts.executionProvider ?? 'auto';
    const { info, runner } = await openGradientModel(model, bopts, { executionProvider: ep, workers, intraOpThreads: opts.intraOpThreads }, opts.cache);
    return new OnnxGradientSession(runner, info, layers, shape, layout);
  }

  /**
   * One session run for the batch. classes: per image, -1 = argmax, other negative = none
   * (zero gradient). Y = sign * sum_n logits[n, class_n], sign = -1 when counterfactual.
   */
  async run(input: InputBatch, classes: Int32Array, opts: { counterfactual?: boolean; inputChecked?: boolean } = {}): Promise<GradientRun> {
    if (this.disposed) throw new GradcamError('The ONNX gradient session was disposed', 'EDISPOSED');
    // the pipeline checked the batch once (adapter.checkInput): rounds do not scan it again
    const batch = opts.inputChecked ? input : checkInputBatch(input, this.layout, this.inputShape);
    const n = batch.shape[0];
    if (!(classes instanceof Int32Array)) throw invalidType('classes', 'Int32Array', classes);
    if (classes.length !== n) throw invalidRange('classes', `Int32Array of length ${n}`, classes);
    const gm = this.gradientModel;
    const fixed = this.inputShape[0];
    let out: Record<string, TensorData>;
    if (fixed > 0 && n !== fixed) {
      if (fixed !== 1) throw invalidRange('input.shape[0]', `${fixed} (the model's fixed batch size)`, n);
      // a model exported with batch 1: one run per image, outputs concatenated
      const per = batch.data.length / n;
      const parts: Array<Record<string, TensorData>> = [];
      for (let i = 0; i < n; i++) {
        const shape = [1, ...batch.shape.slice(1)];
        parts.push(await this.runOnce(batch.data.subarray(i * per, (i + 1) * per), shape, classes.subarray(i, i + 1), !!opts.counterfactual));
      }
      out = {};
      for (const k of Object.keys(parts[0])) {
        const first = parts[0][k];
        const len = (first.data as Float32Array).length;
        const data = first.type === 'int64' ? new BigInt64Array(len * n) : new Float32Array(len * n);
        parts.forEach((p, i) => (data as Float32Array).set(p[k].data as Float32Array, i * len));
        out[k] = { type: first.type, data, dims: [n * (first.dims[0] ?? 1), ...first.dims.slice(1)] };
      }
    } else {
      out = await this.runOnce(batch.data, batch.shape, classes, !!opts.counterfactual);
    }
    const logitsT = out[gm.logits];
    const numClasses = logitsT.dims[logitsT.dims.length - 1];
    const clsOut = out[gm.classesOutput].data as BigInt64Array;
    const classesUsed = Int32Array.from(clsOut, (v) => Number(v));
    const layers: LayerGradients[] = gm.layers.map((name, i) => {
      const a = out[name];
      return { name, activations: a.data as Float32Array, grads: out[gm.gradOutputs[i]].data as Float32Array, featureShape: featureShapeOf(a.dims as number[]) };
    });
    const res: GradientRun = { logits: logitsT.data as Float32Array, numClasses, layers, classes: classesUsed };
    if (gm.inputGradOutput) res.inputGradient = out[gm.inputGradOutput].data as Float32Array;
    return res;
  }

  private async runOnce(data: Float32Array, shape: readonly number[], classes: Int32Array, counterfactual: boolean): Promise<Record<string, TensorData>> {
    const gm = this.gradientModel;
    const n = shape[0];
    const cls = new BigInt64Array(n);
    for (let i = 0; i < n; i++) cls[i] = BigInt(classes[i]);
    const feeds: Record<string, TensorData> = {
      [gm.input]: { type: 'float32', data, dims: shape },
      [gm.classInput]: { type: 'int64', data: cls, dims: [n] },
      [gm.signInput]: { type: 'float32', data: new Float32Array([counterfactual ? -1 : 1]), dims: [] },
    };
    try {
      return await this.runner.run(feeds);
    } catch (e) {
      if (e instanceof GradcamError) throw e;
      throw new GradcamError(`ONNX Runtime failed: ${(e as Error).message}`, 'EORT');
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.runner.release();
  }
}

/** The session's target layers: `layers`, or [layer], or the default layer; each a 4-D tensor of the model. */
function targetLayers(g: GraphIndex, shape: Shape, opts: GradientSessionOptions): string[] {
  if (opts.layers !== undefined && opts.layer !== undefined) throw invalidRange('layer', 'no value when layers is given', opts.layer);
  let names: unknown[];
  if (opts.layers !== undefined) {
    if (!Array.isArray(opts.layers)) throw invalidType('layers', 'array of tensor names', opts.layers);
    names = opts.layers;
  } else if (opts.layer === undefined) {
    return [defaultLayerOf(g, shape)];
  } else {
    names = opts.layer === null ? [] : [opts.layer];
  }
  const what = opts.layers !== undefined ? 'layers' : 'layer';
  let inf: ReturnType<typeof inferShapes> | undefined;
  return names.map((layer, i) => {
    const name = opts.layers !== undefined ? `layers[${i}]` : 'layer';
    if (typeof layer !== 'string') throw invalidType(name, 'tensor name (string)', layer);
    if (names.indexOf(layer) !== i) throw invalidRange(name, `a tensor not listed before in ${what}`, layer);
    if (!g.producer.has(layer)) throw invalidRange(name, `a tensor of the model (e.g. ${defaultLayerOf(g, shape)})`, layer);
    inf ??= inferShapes(g, shape);
    const ls = inf.shapes.get(layer);
    if (ls && ls.length !== 4) throw invalidRange(name, `a 4-D activation (${layer} is ${ls.length}-D)`, layer);
    return layer;
  });
}

export function featureShapeOf(dims: readonly number[]): FeatureShape {
  if (dims.length !== 4) throw new GradcamError(`The target tensor has ${dims.length} dims; a 4-D [N,C,H,W] activation is needed`, 'EBADLAYER');
  return { n: dims[0], k: dims[1], h: dims[2], w: dims[3], layout: 'nchw' };
}

/** ops whose output is a re-arrangement or pooling of an activation, not a new activation */
const NOT_ACTIVATION = new Set([
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'Pad', 'Reshape', 'Flatten',
  'Transpose', 'Identity', 'Dropout', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Resize', 'Cast', 'Split', 'Expand',
]);

export interface LayerCandidate { name: string; op: string; shape: Shape; isDefault: boolean }

/** 4-D float tensors between the input and the logits, in graph order, the default marked. */
export function layerCandidates(g: GraphIndex, inputShape?: Shape): LayerCandidate[] {
  const shape = inputShape ?? (() => { const s = g.inputShape().slice(); if (!(s[0] > 0)) s[0] = -1; return s; })();
  const inf = inferShapes(g, shape);
  const logits = g.outputs[0];
  const fromInput = g.descendants([g.input]);
  const toLogits = g.ancestors([logits]);
  const res: LayerCandidate[] = [];
  for (const n of g.nodes) {
    for (const o of n.output ?? []) {
      if (!o || !fromInput.has(o) || !toLogits.has(o) || o === logits) continue;
      const s = inf.shapes.get(o);
      const t = inf.types.get(o);
      if (!s || s.length !== 4 || (t !== undefined && t !== 1)) continue;
      res.push({ name: o, op: n.opType ?? '', shape: s, isDefault: false });
    }
  }
  let def = -1;
  for (let i = res.length - 1; i >= 0; i--) {
    const c = res[i];
    if (NOT_ACTIVATION.has(c.op) || (c.shape[2] === 1 && c.shape[3] === 1)) continue;
    def = i;
    break;
  }
  if (def < 0) def = res.length - 1;
  if (def >= 0) res[def].isDefault = true;
  return res;
}

export function defaultLayerOf(g: GraphIndex, inputShape?: Shape): string {
  const c = layerCandidates(g, inputShape).find((x) => x.isDefault);
  if (!c) throw new GradcamError('The ONNX model has no 4-D activation between its input and its output to explain', 'EBADLAYER');
  return c.name;
}
