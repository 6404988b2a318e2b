/**
 * The ONNX model adapter: gradients computed by ONNX Runtime itself on a generated forward+backward
 * model (see backward.ts). Per target round, ONE session run gives logits, the target layers'
 * activations, dY/dA and, where asked, the input gradient under a ReLU rule, for the whole batch;
 * lib/cam/explain.ts does the rest.
 */
import type { AdapterPass, GradientRequest, ModelAdapter, RoundGradients } from '../cam/adapter';
import { COPIES_INPUT, explain, prepare } from '../cam/explain';
import { checkInputBatch } from '../cam/input';
import { GradcamError, checkKnownKeys, checkOneOf, checkPositiveInteger, didYouMean, invalidRange, invalidType, rangeErrorOf } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch, LayerInfo, Layout } from '../types';
import { checkDifferentiable, logitsOf } from './backward';
import { CacheOptions, ModelCache, checkCacheOption, readModelFile } from './cache';
import { GraphIndex, Shape, inferShapes } from './graph';
import { SharedInputPool } from '../io/shared-pool';
import { ModelProto, loadModel } from './proto';
import { LayerNames, layerHint, layerNames, resolveLayerName } from './layer-names';
import {
  EXECUTION_PROVIDERS, ExecutionProviderRequest, GradientRun, LayerCandidate, OnnxGradientSession,
  inputLayout, layerCandidates, spatialOf, withSpatial,
} from './session';
import { prestartWorkers } from './runtime';

export interface OnnxExplainerOptions {
  /** 'auto' (default): CUDA where its execution provider loads, CPU otherwise */
  executionProvider?: ExecutionProviderRequest;
  /** ORT intra-op threads (default: the number of cores) */
  intraOpThreads?: number;
  /**
   * ReLU node names that keep the plain rule under the guided and deconvnet rules. [] (default):
   * every ReLU follows the rule, as the paper defines guided backpropagation. 'functional': the
   * Python libraries' behaviour: pytorch-grad-cam and Captum replace only nn.ReLU modules, not
   * F.relu calls, i.e. the ReLUs a PyTorch export names at the top-level scope ('/Relu', '/Relu_1':
   * F.relu in the model's own forward, e.g. DenseNet's last ReLU; all of GoogLeNet's and
   * Inception v3's) keep the plain rule.
   */
  unguidedNodes?: string[] | 'functional';
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

const EXPLAINER_OPTIONS = ['executionProvider', 'intraOpThreads', 'unguidedNodes', 'workers', 'output', 'cache'] as const;

function toModel(model: unknown): ModelProto {
  if (typeof model === 'string' || model instanceof Uint8Array) return loadModel(model);
  throw invalidType('model', 'ONNX file path or Uint8Array', model);
}

/** The bytes of a model read from a path: a decoding error names the file, as loadModel(path) does. */
function named<T>(model: unknown, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (typeof model === 'string' && e instanceof GradcamError && e.code === 'EBADMODEL' && /^Not an ONNX model/.test(e.message)) {
      throw new GradcamError(e.message.replace(/^Not an ONNX model/, `${model} is not an ONNX model`), 'EBADMODEL');
    }
    throw e;
  }
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
  if (o.unguidedNodes !== undefined && o.unguidedNodes !== 'functional' && (!Array.isArray(o.unguidedNodes) || o.unguidedNodes.some((x) => typeof x !== 'string'))) {
    throw invalidType('unguidedNodes', "'functional' or an array of node names", o.unguidedNodes);
  }
  return o;
}

/**
 * What the adapter reads of a model's graph, computed once per model (and kept in the cache's
 * .summary entry: a warm start then neither reads nor decodes the model).
 */
export interface ModelSummary {
  /** the declared input shape, -1 where symbolic (the batch always) */
  modelShape: number[];
  candidates: LayerCandidate[];
  /** the score tensor */
  scores: string;
  /** classes of the score tensor, -1 where unknown */
  numClasses: number;
  /** ReLU nodes at the export's top-level scope (unguidedNodes 'functional') */
  functionalRelus: string[];
  /** why the input gradient cannot be computed (an unsupported op), or null */
  inputGradError: { message: string; code: string } | null;
  /** ReLU and Clip nodes on feature maps between input and scores: all of them, and without the functional ones */
  ruleCounts: { all: RuleCounts; functional: RuleCounts };
}

interface RuleCounts { relu: number; clip: number }

/** The summary of a decoded model; throws where the model cannot be explained (no 4-D layer, unsupported ops after the default layer). */
export function summarize(graph: GraphIndex, output: string | undefined): ModelSummary {
  const modelShape = graph.inputShape().slice();
  if (!(modelShape[0] > 0)) modelShape[0] = -1;
  const candidates = layerCandidates(graph, modelShape);
  const def = candidates.find((c) => c.isDefault);
  if (!def) throw new GradcamError('The ONNX model has no 4-D activation between its input and its output to explain', 'EBADLAYER');
  const scores = logitsOf(graph, output);
  const shapes = inferShapes(graph, modelShape).shapes;
  const logitsShape = shapes.get(scores);
  // unsupported ops between the default layer and the logits surface now, not halfway through a batch
  checkDifferentiable(graph, [def.name], false, scores);
  let inputGradError: ModelSummary['inputGradError'] = null;
  try {
    checkDifferentiable(graph, [], true, scores);
  } catch (e) {
    if (!(e instanceof GradcamError)) throw e;
    inputGradError = { message: e.message, code: e.code };
  }
  const functional = functionalRelus(graph);
  return {
    modelShape, candidates, scores,
    numClasses: logitsShape && logitsShape.length === 2 && logitsShape[1] > 0 ? logitsShape[1] : -1,
    functionalRelus: functional,
    inputGradError,
    ruleCounts: { all: countRuleActivations(graph, modelShape, scores, []), functional: countRuleActivations(graph, modelShape, scores, functional) },
  };
}

/** ReLU and Clip nodes on feature maps between the input and the scores, but those in `plain` */
function countRuleActivations(graph: GraphIndex, modelShape: Shape, scores: string, plainNodes: readonly string[]): RuleCounts {
  // the ops lib/onnx/backward/rules/activation.ts gives the rule to: Relu always, Clip with guidedRelu6;
  // on feature maps (4-D): a ReLU in a dense head does not make a guided picture
  const plain = new Set(plainNodes);
  const onPath = graph.ancestors([scores]);
  const fromInput = graph.descendants([graph.input]);
  const shapes = inferShapes(graph, modelShape).shapes;
  const counts = { relu: 0, clip: 0 };
  for (const n of graph.nodes) {
    const o = n.output?.[0];
    if (!o || !onPath.has(o) || !fromInput.has(o) || plain.has(n.name ?? '') || shapes.get(o)?.length !== 4) continue;
    if (n.opType === 'Relu') counts.relu++;
    else if (n.opType === 'Clip') counts.clip++;
  }
  return counts;
}

/** A model decoded on first need (a warm start with a cached summary and gradient model never decodes it). */
export class LazyModel {
  private p?: ModelProto;
  private g?: GraphIndex;
  constructor(private readonly load: () => ModelProto) {}
  get proto(): ModelProto {
    this.p ??= this.load();
    return this.p;
  }
  get graph(): GraphIndex {
    this.g ??= new GraphIndex(this.proto);
    return this.g;
  }
}

export class OnnxAdapter implements ModelAdapter {
  readonly layout: Layout;
  readonly defaultLayer: string;
  readonly supportsCustomScore = false;
  private readonly sessions = new Map<string, Promise<OnnxGradientSession>>();
  private readonly candidates: LayerCandidate[];
  private readonly modelShape: Shape;
  private readonly numClasses: number;
  private readonly scores: string;
  private engineName = 'onnxruntime-cpu';
  /** ReLU nodes that keep the plain rule under the guided and deconvnet rules */
  readonly unguidedNodes: string[];
  private disposed = false;
  private names?: LayerNames;
  private ruleCounts?: RuleCounts;
  private readonly inputPool = new SharedInputPool();

  constructor(private readonly model: LazyModel, private readonly summary: ModelSummary, private readonly options: OnnxExplainerOptions, private readonly cache?: ModelCache) {
    this.modelShape = summary.modelShape.slice();
    this.layout = inputLayout(this.modelShape);
    this.candidates = summary.candidates;
    this.defaultLayer = (summary.candidates.find((c) => c.isDefault) as LayerCandidate).name;
    const ug = options.unguidedNodes;
    this.unguidedNodes = ug === undefined ? [] : ug === 'functional' ? summary.functionalRelus.slice() : ug.slice();
    this.scores = summary.scores;
    this.numClasses = summary.numClasses;
    if (ug === undefined || (Array.isArray(ug) && ug.length === 0)) this.ruleCounts = summary.ruleCounts.all;
    else if (ug === 'functional') this.ruleCounts = summary.ruleCounts.functional;
  }

  /** the model's declared input shape in its layout; null where symbolic */
  get inputShape(): Array<number | null> {
    return this.modelShape.map((d) => (d > 0 ? d : null));
  }

  get engine(): string {
    return this.engineName;
  }

  layers(): LayerInfo[] {
    const modules = this.layerNames().modulesOf;
    return this.candidates.map((c) => {
      const info: LayerInfo = { name: c.name, type: c.op, shape: c.shape.map((d) => (d >= 0 ? d : null)), isDefault: c.isDefault };
      const m = modules.get(c.name);
      if (m) info.modules = m;
      return info;
    });
  }

  /** node names and PyTorch module paths of the candidate layers (lib/onnx/layer-names.ts), built on first need */
  private layerNames(): LayerNames {
    this.names ??= layerNames(this.model.graph, this.candidates.map((c) => c.name));
    return this.names;
  }

  /**
   * With worker threads (workers >= 1): the pipeline's copy of the batch goes to reused
   * SharedArrayBuffer memory, which every session run of the call posts to its worker without a copy.
   * In this thread (workers 0) ORT takes no shared memory: undefined, a plain copy.
   */
  inputArray(length: number): { data: Float32Array; release(): void } | undefined {
    if ((this.options.workers ?? 1) === 0 || typeof SharedArrayBuffer === 'undefined') return undefined;
    return this.inputPool.acquire(length);
  }

  checkInput(input: unknown): InputBatch {
    if (this.disposed) throw new GradcamError('The explainer was disposed', 'EDISPOSED');
    return checkInputBatch(input, this.layout, this.modelShape);
  }

  /** a tensor name, a node name or a PyTorch module path (lib/onnx/layer-names.ts) -> the tensor */
  resolveLayer(given: string): string {
    const tensors = this.candidates.map((c) => c.name);
    // a tensor name needs no node names (which need the decoded model)
    const name = tensors.includes(given) ? given : resolveLayerName(given, tensors, this.layerNames());
    if (name === undefined) {
      const hint = layerHint(given, tensors, this.layerNames());
      throw Object.assign(new RangeError(
        `Expected one of the model's 4-D activations, a node name or a module path (see layers(); default ${this.defaultLayer}) for layer but received '${given}'${hint}`,
      ), { code: 'EBADLAYER' });
    }
    if (name !== this.defaultLayer) checkDifferentiable(this.model.graph, [name], false, this.scores);
    return name;
  }

  unsupported(request: GradientRequest): Error | undefined {
    if (!request.inputGradient) return undefined;
    const e = this.summary.inputGradError;
    // checkDifferentiable's codes
    return e ? new GradcamError(e.message, e.code === 'EBADLAYER' ? 'EBADLAYER' : 'EUNSUPPORTED') : undefined;
  }

  ruleActivations(guidedRelu6: boolean): number {
    this.ruleCounts ??= countRuleActivations(this.model.graph, this.modelShape, this.scores, this.unguidedNodes);
    return this.ruleCounts.relu + (guidedRelu6 ? this.ruleCounts.clip : 0);
  }

  /** The session for a request and input size; built once. */
  async session(request: Pick<GradientRequest, 'layers' | 'inputGradient' | 'guidedRelu6'>, size: [number, number]): Promise<OnnxGradientSession> {
    const rule = request.inputGradient;
    const key = `${request.layers.join('\u0000')}|${rule ?? ''}|${rule ? request.guidedRelu6 : ''}|${size.join('x')}`;
    let p = this.sessions.get(key);
    if (!p) {
      const inputShape = withSpatial(this.modelShape, this.layout, size);
      p = OnnxGradientSession.open(() => this.model.proto, { inputShape, layout: this.layout, layers: request.layers }, {
        layers: request.layers,
        inputGradient: rule ?? false,
        guidedRelu6: !!request.guidedRelu6,
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

  async prepare(request: GradientRequest, inputSize?: [number, number]): Promise<void> {
    const declared = spatialOf(this.inputShape, this.layout);
    const size = inputSize ?? (declared.every((d) => d !== null) ? (declared as [number, number]) : undefined);
    if (size) await this.session(request, size);
  }

  async begin(batch: InputBatch, request: GradientRequest): Promise<AdapterPass> {
    const size = spatialOf(batch.shape, this.layout);
    const session = await this.session(request, size);
    const n = batch.shape[0];
    // begin() gets the batch explain() checked with checkInput (against this model's shape)
    const opts = { counterfactual: request.counterfactual, inputChecked: true };
    // the first run explains every image's argmax: it serves round 0 whenever round 0 is the argmax
    const first = await session.run(batch, new Int32Array(n).fill(-1), opts);
    const toRound = (r: GradientRun, classes: Int32Array): RoundGradients => ({
      classes,
      layerGrads: r.layers.map((l) => l.grads),
      inputGradient: r.inputGradient,
    });
    return {
      logits: first.logits,
      numClasses: first.numClasses,
      activations: first.layers.map((l) => ({ name: l.name, shape: l.featureShape, data: l.activations })),
      round: async (classes: Int32Array) => {
        if (classes.every((c, i) => c === first.classes[i])) return toRound(first, classes);
        // negative: no class for this image (-2: zero gradient; -1 would mean argmax to the session)
        const r = await session.run(batch, Int32Array.from(classes, (c) => (c < 0 ? -2 : c)), opts);
        return toRound(r, classes);
      },
      release: () => undefined,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.inputPool.clear();
    for (const p of this.sessions.values()) p.then((s) => s.dispose()).catch(() => undefined);
    this.sessions.clear();
  }
}

/** The Explainer over an ONNX model: the shared pipeline on an OnnxAdapter. */
export class OnnxExplainer implements Explainer {
  /** explain() copies the batch at call time (lib/cam/explain.ts) */
  readonly [COPIES_INPUT] = true;
  constructor(readonly adapter: OnnxAdapter) {}
  get engine(): string { return this.adapter.engine; }
  get layout(): Layout { return this.adapter.layout; }
  get inputShape(): Array<number | null> { return this.adapter.inputShape; }
  get defaultLayer(): string { return this.adapter.defaultLayer; }
  get unguidedNodes(): string[] { return this.adapter.unguidedNodes; }
  layers(): LayerInfo[] { return this.adapter.layers(); }
  explain(input: InputBatch, options?: ExplainOptions): Promise<ExplainResult> { return explain(this.adapter, input, options); }
  prepare(options?: ExplainOptions, inputSize?: [number, number]): Promise<void> { return prepare(this.adapter, options, inputSize); }
  dispose(): void { this.adapter.dispose(); }
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
  if (options) checkKnownKeys('ONNX explainer options', options, [...EXPLAINER_OPTIONS, 'engine']);
  const cacheOpts = checkCacheOption('cache', opts.cache);
  if (typeof model !== 'string' && !(model instanceof Uint8Array)) throw invalidType('model', 'ONNX file path or Uint8Array', model);
  // the session's worker threads start now, while the model is looked up (runtime.ts)
  const workers = opts.workers ?? 1;
  if (workers > 0) prestartWorkers(workers);
  let bytes: Uint8Array | undefined;
  let cache: ModelCache | undefined;
  if (cacheOpts === false) {
    bytes = typeof model === 'string' ? readModelFile(model) : model;
  } else if (typeof model === 'string') {
    // a model file seen before is not read: its sha256 is remembered with its identity (cache.ts)
    ({ cache, bytes } = await ModelCache.forFile(model, cacheOpts));
  } else {
    bytes = model;
    cache = new ModelCache(model, cacheOpts);
  }
  const read = bytes;
  const lazy = new LazyModel(() => named(model, () => toModel(read ?? readModelFile(model as string))));
  const summaryOptions = { output: opts.output ?? null };
  let summary = cache?.readSummary(summaryOptions, isSummary);
  if (!summary) {
    summary = summarize(lazy.graph, opts.output);
    if (cache) await cache.writeSummary(summaryOptions, summary);
  }
  return new OnnxExplainer(new OnnxAdapter(lazy, summary, opts, cache));
}

function isSummary(x: unknown): x is ModelSummary {
  const v = x as ModelSummary;
  return typeof v === 'object' && v !== null && Array.isArray(v.modelShape) && v.modelShape.length > 0 && Array.isArray(v.candidates) && v.candidates.some((c) => c && c.isDefault)
    && typeof v.scores === 'string' && typeof v.numClasses === 'number' && Array.isArray(v.functionalRelus)
    && typeof v.ruleCounts?.all?.relu === 'number' && typeof v.ruleCounts?.functional?.relu === 'number';
}

/** Candidate target layers of an ONNX model (tensor name, op, static shape), the default marked. */
export function listOnnxLayers(model: string | Uint8Array | ModelProto): LayerInfo[] {
  const proto = typeof model === 'string' || model instanceof Uint8Array ? loadModel(model)
    : model && typeof model === 'object' && 'graph' in model ? model : (() => { throw invalidType('model', 'ONNX file path, Uint8Array or ModelProto', model); })();
  const g = new GraphIndex(proto);
  return layerCandidates(g).map((c) => ({ name: c.name, type: c.op, shape: c.shape.map((d) => (d >= 0 ? d : null)), isDefault: c.isDefault }));
}
