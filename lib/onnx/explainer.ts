/**
 * The ONNX Explainer: gradients computed by ONNX Runtime itself on a generated forward+backward
 * model (see backward.ts). Per target round, ONE session run gives logits, the target-layer
 * activations, dY/dA and, for the guided methods, the guided input gradient of the whole batch;
 * the CAM pipeline (lib/cam/pipeline.ts) does the rest.
 */
import { assembleResult, GradientRound } from '../cam/pipeline';
import { checkInputBatch } from '../cam/input';
import { resolveTargets, targetRounds } from '../cam/targets';
import { GradcamError, checkBoolean, checkOneOf, checkPositiveInteger, invalidRange, invalidType } from '../errors';
import { METHODS } from '../types';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch, LayerInfo, Layout, Method } from '../types';
import { checkDifferentiable, logitsOf } from './backward';
import { CacheOptions, ModelCache, checkCacheOption, readModelFile } from './cache';
import { GraphIndex, Shape, inferShapes } from './graph';
import { ModelProto, loadModel } from './proto';
import {
  EXECUTION_PROVIDERS, ExecutionProviderRequest, GradientRun, LayerCandidate, OnnxGradientSession,
  featureShapeOf, inputLayout, layerCandidates,
} from './session';

export interface OnnxExplainerOptions {
  /** 'auto' (default): CUDA where its execution provider loads, CPU otherwise */
  executionProvider?: ExecutionProviderRequest;
  /** ORT intra-op threads (default: the number of cores) */
  intraOpThreads?: number;
  /**
   * ReLU node names that keep the plain rule in guided backprop. pytorch-grad-cam and Captum guide
   * only nn.ReLU modules, not F.relu calls (DenseNet's last ReLU). 'auto' (default): the ReLUs a
   * PyTorch export names at the top-level scope ('/Relu', '/Relu_1': F.relu in the model's own
   * forward); [] guides every ReLU.
   */
  unguidedNodes?: string[] | 'auto';
  /**
   * 1 (default): each session runs in a worker thread, so explain() never blocks the event loop
   * (onnxruntime-node's own run() is synchronous native work); the input batch is copied once into
   * the worker, outputs come back without copies. Measured on mobilenet_v2 b8, 2 cores: 2-10% slower
   * than in-thread, while timers keep firing.
   * n > 1: n workers sharing the cores, so concurrent explain() calls run in parallel.
   * 0: ORT runs in this thread, without copies, and blocks the event loop while it runs.
   */
  workers?: number;
  /** the score tensor [N, classes]; default: the first output, or the input of a final Softmax (the paper's pre-softmax score) */
  output?: string;
  /**
   * Keep the generated gradient models (and ORT's optimized ones) on disk, so that the next run of
   * the same model starts at once (lib/onnx/cache.ts). true (default): in $GRADCAM_CACHE_DIR or the
   * user's cache folder; { dir, maxBytes }: there, bounded (default 2 GiB); false: build every time.
   */
  cache?: boolean | CacheOptions;
}

type SessionKind = 'cam' | 'guided-gradcam' | 'guided-backprop';

function toModel(model: unknown): ModelProto {
  if (typeof model === 'string' || model instanceof Uint8Array) return loadModel(model);
  throw invalidType('model', 'ONNX file path or Uint8Array', model);
}

function checkOptions(options: unknown): OnnxExplainerOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
  const o = options as OnnxExplainerOptions;
  if (o.executionProvider !== undefined) checkOneOf('executionProvider', o.executionProvider, EXECUTION_PROVIDERS);
  if (o.intraOpThreads !== undefined) checkPositiveInteger('intraOpThreads', o.intraOpThreads);
  if (o.workers !== undefined && o.workers !== 0) checkPositiveInteger('workers', o.workers);
  if (o.output !== undefined && typeof o.output !== 'string') throw invalidType('output', 'tensor name (string)', o.output);
  checkCacheOption('cache', o.cache);
  if (o.unguidedNodes !== undefined && o.unguidedNodes !== 'auto' && (!Array.isArray(o.unguidedNodes) || o.unguidedNodes.some((x) => typeof x !== 'string'))) {
    throw invalidType('unguidedNodes', "'auto' or an array of node names", o.unguidedNodes);
  }
  return o;
}

export class OnnxExplainer implements Explainer {
  readonly layout: Layout;
  readonly defaultLayer: string;
  private readonly sessions = new Map<string, Promise<OnnxGradientSession>>();
  private readonly candidates: LayerCandidate[];
  private readonly modelShape: Shape;
  private readonly numClasses: number;
  private readonly guidedError?: GradcamError;
  private engineName = 'onnxruntime-cpu';
  /** ReLU nodes that keep the plain rule in guided backprop */
  readonly unguidedNodes: string[];
  private disposed = false;

  constructor(private readonly proto: ModelProto, private readonly graph: GraphIndex, private readonly options: OnnxExplainerOptions, private readonly cache?: ModelCache) {
    const declared = graph.inputShape();
    this.modelShape = declared.slice();
    if (!(this.modelShape[0] > 0)) this.modelShape[0] = -1;
    this.layout = inputLayout(declared);
    this.candidates = layerCandidates(graph, this.modelShape);
    const def = this.candidates.find((c) => c.isDefault);
    if (!def) throw new GradcamError('The ONNX model has no 4-D activation between its input and its output to explain', 'EBADLAYER');
    this.defaultLayer = def.name;
    const ug = options.unguidedNodes;
    this.unguidedNodes = ug === undefined || ug === 'auto' ? functionalRelus(graph) : ug.slice();
    const scores = logitsOf(graph, options.output);
    const logitsShape = inferShapes(graph, this.modelShape).shapes.get(scores);
    this.numClasses = logitsShape && logitsShape.length === 2 && logitsShape[1] > 0 ? logitsShape[1] : -1;
    // unsupported ops surface now, not halfway through a batch
    checkDifferentiable(graph, [this.defaultLayer], false, scores);
    try {
      checkDifferentiable(graph, [], true, scores);
    } catch (e) {
      if (!(e instanceof GradcamError)) throw e;
      this.guidedError = e;
    }
  }

  /** the model's declared input shape in its layout; null where symbolic */
  get inputShape(): Array<number | null> {
    return this.modelShape.map((d) => (d > 0 ? d : null));
  }

  get engine(): string {
    return this.engineName;
  }

  layers(): LayerInfo[] {
    return this.candidates.map((c) => ({ name: c.name, type: c.op, shape: c.shape.map((d) => (d >= 0 ? d : null)), isDefault: c.isDefault }));
  }

  /** The session for a method, layer, rule set and input size; built once. */
  async session(kind: SessionKind, layer: string, guidedRelu6: boolean, size: [number, number]): Promise<OnnxGradientSession> {
    const key = `${kind}|${kind === 'guided-backprop' ? '' : layer}|${kind === 'cam' ? '' : guidedRelu6}|${size.join('x')}`;
    let p = this.sessions.get(key);
    if (!p) {
      p = OnnxGradientSession.create(this.proto, {
        layer: kind === 'guided-backprop' ? null : layer,
        inputGrad: kind !== 'cam',
        guided: true,
        guidedRelu6,
        unguidedNodes: this.unguidedNodes,
        executionProvider: this.options.executionProvider,
        intraOpThreads: this.options.intraOpThreads,
        workers: this.options.workers ?? 1,
        output: this.options.output,
        inputSize: size,
        cache: this.cache,
      });
      this.sessions.set(key, p);
      p.catch(() => this.sessions.delete(key));
    }
    const s = await p;
    this.engineName = s.engine;
    return s;
  }

  async explain(input: InputBatch, options: ExplainOptions = {}): Promise<ExplainResult> {
    const startedAt = performance.now();
    if (this.disposed) throw new GradcamError('The explainer was disposed', 'EDISPOSED');
    if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
    const method: Method = options.method === undefined ? 'gradcam' : checkOneOf('method', options.method, METHODS);
    const counterfactual = options.counterfactual === undefined ? false : checkBoolean('counterfactual', options.counterfactual);
    const guidedRelu6 = options.guidedRelu6 === undefined ? false : checkBoolean('guidedRelu6', options.guidedRelu6);
    let layer = this.defaultLayer;
    if (options.layer !== undefined) {
      if (typeof options.layer !== 'string') throw invalidType('layer', 'layer name (string)', options.layer);
      if (!this.candidates.some((c) => c.name === options.layer)) {
        throw invalidRange('layer', `one of the model's 4-D activations (see layers(); default ${this.defaultLayer})`, options.layer);
      }
      layer = options.layer;
    }
    const batch = checkInputBatch(input, this.layout, this.modelShape);
    const n = batch.shape[0];
    const size: [number, number] = this.layout === 'nchw' ? [batch.shape[2], batch.shape[3]] : [batch.shape[1], batch.shape[2]];
    if (method !== 'gradcam' && this.guidedError) throw this.guidedError;
    if (layer !== this.defaultLayer && method !== 'guided-backprop') checkDifferentiable(this.graph, [layer], false, this.options.output);
    const kind: SessionKind = method === 'gradcam' ? 'cam' : method;
    const session = await this.session(kind, layer, guidedRelu6, size);

    const t0 = performance.now();
    const spec = options.targets;
    const runs: GradientRun[] = [];
    const run = async (classes: Int32Array): Promise<GradientRun> => {
      const r = await session.run(batch, classes, { counterfactual });
      runs.push(r);
      return r;
    };
    const roundOf = (r: GradientRun, classes?: Int32Array): GradientRound => ({
      classes: classes ?? r.classes,
      grads: kind === 'guided-backprop' ? undefined : r.grads,
      guided: r.inputGrad,
    });
    const rounds: GradientRound[] = [];
    let first: GradientRun | undefined;
    if (spec === undefined || spec === 'argmax') {
      first = await run(new Int32Array(n).fill(-1));
      rounds.push(roundOf(first));
    } else {
      let perImage: number[][];
      const needsLogits = (typeof spec === 'object' && spec !== null && !Array.isArray(spec)) || this.numClasses < 0;
      if (needsLogits) {
        // top-1 of every image is the argmax: the first run serves round 0 when they agree
        first = await run(new Int32Array(n).fill(-1));
        perImage = resolveTargets(spec, first.logits, n, first.numClasses);
      } else {
        perImage = resolveTargets(spec, new Float32Array(n * this.numClasses), n, this.numClasses);
      }
      const rs = targetRounds(perImage);
      for (const [i, classes] of rs.entries()) {
        if (i === 0 && first && classes.every((c, j) => c === first!.classes[j])) {
          rounds.push(roundOf(first, classes));
          continue;
        }
        const r = await run(Int32Array.from(classes, (c) => (c < 0 ? -2 : c)));
        rounds.push(roundOf(r, classes));
      }
    }
    const gradientsMs = performance.now() - t0;
    const last = runs[runs.length - 1];
    let featureShape = last.featureShape;
    let activations: Float32Array = last.activations;
    if (kind === 'guided-backprop') {
      const c = this.candidates.find((x) => x.name === layer) as LayerCandidate;
      const s = c.shape.map((d) => (d > 0 ? d : 1));
      featureShape = featureShapeOf([n, s[1], s[2], s[3]]);
      activations = new Float32Array(0);
    }
    return assembleResult({
      method, layer, counterfactual,
      inputShape: batch.shape, layout: this.layout,
      featureShape, activations, logits: last.logits, numClasses: last.numClasses, rounds,
      engine: session.engine, device: options.device, gradientsMs, startedAt,
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.sessions.values()) p.then((s) => s.dispose()).catch(() => undefined);
    this.sessions.clear();
  }
}

/** ReLU nodes a PyTorch export (1.13+) names at the root scope: F.relu calls in the model's own forward. */
export function functionalRelus(g: GraphIndex): string[] {
  return g.nodes.filter((n) => n.opType === 'Relu' && /^\/Relu(_\d+)?$/.test(n.name ?? '')).map((n) => n.name as string);
}

/**
 * An Explainer for an ONNX model (path or bytes). Unsupported ops between the default layer and
 * the logits raise a GradcamError here. ORT sessions are built on first need (by explain()), so
 * listing layers builds none; with the cache (the default) a model seen before loads at once.
 */
export async function createOnnxExplainer(model: string | Uint8Array, options?: OnnxExplainerOptions): Promise<Explainer> {
  const opts = checkOptions(options);
  const cacheOpts = checkCacheOption('cache', opts.cache);
  const bytes = typeof model === 'string' ? readModelFile(model) : model;
  const proto = toModel(bytes);
  const cache = cacheOpts === false ? undefined : new ModelCache(bytes, cacheOpts);
  return new OnnxExplainer(proto, new GraphIndex(proto), opts, cache);
}

/** Candidate target layers of an ONNX model (tensor name, op, static shape), the default marked. */
export function listOnnxLayers(model: string | Uint8Array | ModelProto): LayerInfo[] {
  const proto = typeof model === 'string' || model instanceof Uint8Array ? loadModel(model)
    : model && typeof model === 'object' && 'graph' in model ? model : (() => { throw invalidType('model', 'ONNX file path, Uint8Array or ModelProto', model); })();
  const g = new GraphIndex(proto);
  return layerCandidates(g).map((c) => ({ name: c.name, type: c.op, shape: c.shape.map((d) => (d >= 0 ? d : null)), isDefault: c.isDefault }));
}
