/**
 * The tfjs model adapter: one forward pass (no tape) for the logits and the target layers'
 * activations, then per target round one batched backward pass through the head for dY/dA at
 * every target layer and, where asked, one backward pass through the whole network for dY/dx under
 * a ReLU rule. The methods and the CAM maths run in the shared pipeline (lib/cam/explain.ts).
 *
 * All tensor work runs in synchronous tf.tidy blocks that return plain arrays; the promise yields
 * to the event loop between them, and nothing outlives a call except the model's own tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../arrays';
import type { AdapterPass, GradientRequest, LayerActivations, ModelAdapter, RoundGradients } from '../cam/adapter';
import { COPIES_INPUT, explain, prepare } from '../cam/explain';
import { checkInputBatch } from '../cam/input';
import { GradcamError, describe, didYouMean, rangeErrorOf } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch, LayerInfo, Layout, ScoreFunction } from '../types';
import { ensureBackend, type TfjsEngine } from './engine';
import type { RunMode } from './ops';
import { PLAIN, countActivations } from './ops';
import { descendants, evaluate, frontier, type Program } from './program';

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function copyOut(t: tf.Tensor): Float32Array {
  return new Float32Array(t.dataSync() as Float32Array);
}

/** Memory one pass may use, by engine: wasm's heap is 32-bit; tfjs-node's tensors live in native memory. */
const PASS_BUDGET_BYTES: Record<TfjsEngine, number> = {
  'tfjs-wasm': 1.5e9,
  'tfjs-cpu': 2e9,
  'tfjs-node': 4e9,
  'tfjs-node-gpu': 4e9,
};

/** Images per pass: as many as fit the budget (all of them when the size per image is unknown). */
export function chunkSize(engine: TfjsEngine, bytesPerImage: number, n: number): number {
  const env = Number(process.env.GRADCAM_TFJS_CHUNK);
  if (Number.isInteger(env) && env > 0) return Math.min(env, n);
  if (!(bytesPerImage > 0)) return n;
  return Math.max(1, Math.min(n, Math.floor(PASS_BUDGET_BYTES[engine] / bytesPerImage)));
}

/** One-hot selection [n, classes] of each image's class, times the sign. */
function selection(classes: Int32Array, numClasses: number, sign: number): tf.Tensor2D {
  const n = classes.length;
  const sel = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) if (classes[i] >= 0) sel[i * numClasses + classes[i]] = sign;
  return tf.tensor2d(sel, [n, numClasses]);
}

/** A 4-D NHWC tensor as an InputBatch (float32 values copied out of the backend). */
function tensorToBatch(t: tf.Tensor): InputBatch {
  if (t.isDisposed) throw rangeErrorOf('Expected a live tf.Tensor for input but received a disposed tf.Tensor');
  if (t.rank !== 4) throw rangeErrorOf(`Expected a 4-D tf.Tensor [n, H, W, C] (NHWC) for input but received a tf.Tensor of shape [${t.shape}]`);
  const values = t.dataSync();
  const data = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  return { data, shape: t.shape as [number, number, number, number], layout: 'nhwc' };
}

/** A custom score function's output for `count` images, checked: a tf.Tensor of n scores. */
function customScores(fn: ScoreFunction, logits: tf.Tensor2D, count: number): tf.Tensor1D {
  const out: unknown = fn(logits);
  if (!(out instanceof tf.Tensor) || out.size !== count || (out.rank !== 1 && !(out.rank === 2 && out.shape[1] === 1))) {
    const got = out instanceof tf.Tensor ? `a tf.Tensor of shape [${out.shape}]` : describe(out);
    throw Object.assign(new TypeError(`Expected function returning a tf.Tensor of shape [${count}] (one score per image) for targets.score but received ${got}`), { code: 'EARGTYPE' });
  }
  return tf.reshape(out, [count]) as tf.Tensor1D;
}

/** What the explainer needs from a model: a forward pass and a gradient for each rule. */
export interface GradientSource {
  readonly layout: Layout;
  /** NHWC input shape, batch null, null = any */
  readonly inputShape: Array<number | null>;
  layers(): LayerInfo[];
  readonly defaultLayer: string;
  /**
   * forward: logits [n,classes] and the target layers' activations [n,h,w,k] (kept: the caller
   * disposes `state`). head(points): the logits again from the kept state, with points[j] replacing
   * layer j's value where no other target layer feeds it, and added to its value where one does
   * (pass zeros there): differentiating at these points gives dY/dA at every layer in one pass.
   */
  forward(x: tf.Tensor4D, layers: string[]): { logits: tf.Tensor; activations: tf.Tensor4D[]; state: tf.Tensor[]; head: (points: tf.Tensor4D[]) => tf.Tensor; roots: boolean[] };
  /** logits as a function of x with the given backward rules (for input gradients) */
  logitsOf(x: tf.Tensor4D, mode: RunMode): tf.Tensor;
  readonly supportsGuided: boolean;
  /** float32 bytes of all activations of one image (0 = unknown) */
  bytesPerImage(): number;
  dispose(): void;
}

/** A GradientSource over a Program (Layers or Graph model). */
export class ProgramSource implements GradientSource {
  readonly layout: Layout = 'nhwc';
  readonly supportsGuided = true;
  readonly inputShape: Array<number | null>;
  readonly defaultLayer: string;
  private readonly candidates: LayerInfo[];
  private readonly byName = new Map<string, string>();
  private readonly plans = new Map<string, { run: Set<string>; keep: string[]; roots: boolean[] }>();

  constructor(readonly program: Program) {
    this.inputShape = program.inputShape;
    const logitsIndex = program.nodes.findIndex((n) => n.key === program.logitsKey);
    const infos: LayerInfo[] = [];
    for (let i = 0; i < program.nodes.length; i++) {
      const node = program.nodes[i];
      if (i >= logitsIndex || node.shape.length !== 4) continue;
      this.byName.set(node.name, node.key);
      infos.push({ name: node.name, type: node.type, shape: node.shape.slice(), isDefault: false });
    }
    let def = -1;
    for (let i = infos.length - 1; i >= 0; i--) {
      const [, h, w] = infos[i].shape;
      if (h === null || w === null || (h as number) * (w as number) > 1) {
        def = i;
        break;
      }
    }
    if (def < 0) throw new GradcamError('the model has no 4-D activation with spatial size above 1 to explain', 'EMODEL');
    infos[def].isDefault = true;
    this.defaultLayer = infos[def].name;
    this.candidates = infos;
  }

  layers(): LayerInfo[] {
    return this.candidates.map((l) => ({ ...l, shape: l.shape.slice() }));
  }

  hasLayer(name: string): boolean {
    return this.byName.has(name);
  }

  /** The nodes the head re-runs for these target layers, the values it reads, and which layers are roots. */
  private plan(keys: string[]) {
    const id = keys.join('\u0000');
    let p = this.plans.get(id);
    if (!p) {
      const downs = keys.map((k) => descendants(this.program, k));
      const run = new Set<string>();
      for (const d of downs) for (const k of d) run.add(k);
      const roots = keys.map((k) => !run.has(k));
      const keep = new Set<string>(keys.filter((_, j) => roots[j]));
      for (const node of this.program.nodes) {
        if (!run.has(node.key)) continue;
        for (const k of node.inputs) if (!run.has(k) && !this.program.constants.has(k)) keep.add(k);
      }
      keys.forEach((k, j) => {
        if (!downs[j].has(this.program.logitsKey) && k !== this.program.logitsKey) {
          throw new GradcamError(`the logits do not depend on layer '${this.program.nodes.find((n) => n.key === k)?.name ?? k}'`, 'EMODEL');
        }
      });
      p = { run, keep: [...keep], roots };
      this.plans.set(id, p);
    }
    return p;
  }

  forward(x: tf.Tensor4D, layers: string[]) {
    const keys = layers.map((l) => this.byName.get(l) as string);
    const { run, keep, roots } = this.plan(keys);
    const values = new Map<string, tf.Tensor>([[this.program.inputKey, x]]);
    const logits = evaluate(this.program, values, PLAIN);
    const activations = keys.map((k) => values.get(k) as tf.Tensor4D);
    const state = keep.map((k) => values.get(k) as tf.Tensor);
    const head = (points: tf.Tensor4D[]) => {
      const v = new Map<string, tf.Tensor>();
      keep.forEach((k, i) => v.set(k, state[i]));
      const deltas = new Map<string, tf.Tensor>();
      keys.forEach((k, j) => (roots[j] ? v.set(k, points[j]) : deltas.set(k, points[j])));
      return evaluate(this.program, v, PLAIN, run, deltas);
    };
    return { logits, activations, state: [logits, ...activations, ...state], head, roots };
  }

  logitsOf(x: tf.Tensor4D, mode: RunMode): tf.Tensor {
    return evaluate(this.program, new Map([[this.program.inputKey, x]]), mode);
  }

  private counts?: { relu: number; relu6: number };

  /** ReLUs and ReLU6s on feature maps (4-D) between the input and the logits, counted on one forward pass of a zero image (once). */
  activationCounts(): { relu: number; relu6: number } {
    if (this.counts) return this.counts;
    const [, H, W, C] = this.inputShape;
    const counts = countActivations(() => {
      tf.tidy(() => {
        this.logitsOf(tf.zeros([1, H ?? 64, W ?? 64, C ?? 3]) as tf.Tensor4D, PLAIN);
      });
    });
    this.counts = counts;
    return counts;
  }

  bytesPerImage(): number {
    const [, H, W] = this.inputShape;
    let total = 0;
    for (const node of this.program.nodes) {
      // unknown spatial dims: assume the input's (or 224)
      const dims = node.shape.slice(1).map((d, i) => d ?? (i === 0 ? H ?? 224 : i === 1 ? W ?? 224 : 1));
      total += 4 * dims.reduce((a, b) => a * (b as number), 1);
    }
    return total;
  }

  dispose(): void {
    for (const t of this.program.owned) t.dispose();
    this.program.owned.length = 0;
  }
}

export interface SplitModel {
  features(x: tf.Tensor4D): tf.Tensor4D;
  head(a: tf.Tensor4D): tf.Tensor2D;
  layerName?: string;
  layout?: Layout;
}

/** A GradientSource over a user-split model: Grad-CAM only (guided ReLUs cannot reach inside functions). */
export class SplitSource implements GradientSource {
  readonly layout: Layout;
  readonly supportsGuided = false;
  readonly inputShape: Array<number | null> = [null, null, null, null];
  readonly defaultLayer: string;
  constructor(private readonly model: SplitModel) {
    this.layout = model.layout ?? 'nhwc';
    this.defaultLayer = model.layerName ?? 'features';
  }
  layers(): LayerInfo[] {
    return [{ name: this.defaultLayer, type: 'SplitModel', shape: [null, null, null, null], isDefault: true }];
  }
  hasLayer(name: string): boolean {
    return name === this.defaultLayer;
  }
  forward(x: tf.Tensor4D) {
    const activations = this.model.features(x);
    const logits = this.model.head(activations);
    return { logits, activations: [activations], state: [logits, activations], head: (a: tf.Tensor4D[]) => this.model.head(a[0]), roots: [true] };
  }
  logitsOf(x: tf.Tensor4D): tf.Tensor {
    return this.model.head(this.model.features(x));
  }
  bytesPerImage(): number {
    return 0;
  }
  dispose(): void {
    /* nothing owned */
  }
}

/** What the main thread knows of a model (also of one that lives in a worker thread). */
export interface TfjsModelInfo {
  layout: Layout;
  inputShape: Array<number | null>;
  defaultLayer: string;
  layers: LayerInfo[];
  /** input gradients and several target layers work (Layers/Graph models; not a SplitModel) */
  supportsGuided: boolean;
  /** layer types run through layer.apply (see TfjsExplainer.fallbackLayers) */
  fallbacks: string[];
  /** ReLUs and ReLU6s on feature maps (see ModelAdapter.ruleActivations); undefined: unknown */
  activationCounts?: { relu: number; relu6: number };
}

export function modelInfo(source: GradientSource): TfjsModelInfo {
  return {
    layout: source.layout,
    inputShape: source.inputShape.slice(),
    defaultLayer: source.defaultLayer,
    layers: source.layers(),
    supportsGuided: source.supportsGuided,
    fallbacks: source instanceof ProgramSource ? [...new Set(source.program.fallbacks)] : [],
    // one forward pass of a zero image, on the active engine (made where the model lives)
    activationCounts: source instanceof ProgramSource ? source.activationCounts() : undefined,
  };
}

/** An InputBatch (NHWC, or NCHW: transposed in-graph) or a 4-D NHWC tf.Tensor (read, not disposed). */
export function checkTfjsInput(input: unknown, info: Pick<TfjsModelInfo, 'layout' | 'inputShape'>): InputBatch {
  if (input instanceof tf.Tensor) input = tensorToBatch(input);
  const [, H, W, C] = info.inputShape;
  // tfjs models are NHWC but NCHW batches are accepted (transposed in-graph): compare in the batch's own order
  const nchwBatch = (input as Partial<InputBatch> | null)?.layout === 'nchw';
  return checkInputBatch(input, info.layout === 'nhwc' ? undefined : info.layout, nchwBatch ? [null, C, H, W] : [null, H, W, C]);
}

export function resolveTfjsLayer(name: string, has: boolean, layers: () => LayerInfo[]): string {
  if (!has) {
    const names = layers().map((l) => l.name);
    const shown = names.length > 8 ? `${names.slice(-8).join(', ')} (and ${names.length - 8} more, see layers())` : names.join(', ');
    throw Object.assign(new RangeError(`Expected the name of a 4-D layer of the model (${shown}) for layer but received '${name}'${didYouMean(name, names)}`), { code: 'EBADLAYER' });
  }
  return name;
}

export function tfjsUnsupported(request: GradientRequest, supportsGuided: boolean): Error | undefined {
  if (request.inputGradient && !supportsGuided) {
    return new GradcamError(`an input gradient (rule '${request.inputGradient}') needs a LayersModel or GraphModel: ReLU rules cannot be placed inside a SplitModel`, 'EUNSUPPORTED');
  }
  if (request.layers.length > 1 && !supportsGuided) {
    return new GradcamError('a SplitModel has one target layer (its features output)', 'EUNSUPPORTED');
  }
  return undefined;
}

/** The ModelAdapter over a GradientSource on one tfjs engine, in this thread. */
export class TfjsAdapter implements TfjsModelAdapter {
  readonly supportsCustomScore = true;
  readonly thread = 'main' as const;
  private disposed = false;
  constructor(
    readonly source: GradientSource & { hasLayer(name: string): boolean },
    readonly engine: TfjsEngine,
    readonly threadReason = 'created in this thread',
  ) {}

  get fallbackLayers(): string[] {
    return this.source instanceof ProgramSource ? [...new Set(this.source.program.fallbacks)] : [];
  }

  get layout(): Layout {
    return this.source.layout;
  }
  get inputShape(): Array<number | null> {
    return this.source.inputShape.slice();
  }
  get defaultLayer(): string {
    return this.source.defaultLayer;
  }
  layers(): LayerInfo[] {
    return this.source.layers();
  }

  /** An InputBatch (NHWC, or NCHW: transposed in-graph) or a 4-D NHWC tf.Tensor (read, not disposed). */
  checkInput(input: unknown): InputBatch {
    if (this.disposed) throw new GradcamError('this explainer has been disposed', 'EDISPOSED');
    return checkTfjsInput(input, this.source);
  }

  resolveLayer(name: string): string {
    return resolveTfjsLayer(name, this.source.hasLayer(name), () => this.source.layers());
  }

  unsupported(request: GradientRequest): Error | undefined {
    return tfjsUnsupported(request, this.source.supportsGuided);
  }

  ruleActivations(guidedRelu6: boolean): number | undefined {
    if (!(this.source instanceof ProgramSource)) return undefined;
    ensureBackend(this.engine);
    const c = this.source.activationCounts();
    return c.relu + (guidedRelu6 ? c.relu6 : 0);
  }

  async begin(batch: InputBatch, request: GradientRequest): Promise<AdapterPass> {
    ensureBackend(this.engine);
    const source = this.source;
    const n = batch.shape[0];
    const perInput = batch.data.length / n;
    const transposed = batch.layout === 'nchw' && source.layout === 'nhwc';
    /** images [start, start+count) as a model-layout tensor */
    const toModel = (start: number, count: number): tf.Tensor4D =>
      tf.tidy(() => {
        const shape: [number, number, number, number] = [count, batch.shape[1], batch.shape[2], batch.shape[3]];
        const t = tf.tensor4d(batch.data.subarray(start * perInput, (start + count) * perInput), shape);
        return transposed ? tf.transpose(t, [0, 2, 3, 1]) : t;
      });
    const toInputLayout = (g: tf.Tensor4D): tf.Tensor4D => (transposed ? tf.transpose(g, [0, 3, 1, 2]) : g);
    const layers = request.layers;
    const needsHead = layers.length > 0 && request.layerGrads;
    // Images go through in chunks sized to the engine's memory (wasm has a 4 GB heap; an input-gradient
    // pass keeps about six times the model's activations alive): results do not depend on it.
    const chunkOf = (factor: number) => chunkSize(this.engine, source.bytesPerImage() * factor, n);
    const forwardChunk = chunkOf(1.5);
    const gradChunk = request.inputGradient ? chunkOf(6) : forwardChunk;

    interface Part { start: number; count: number; x: tf.Tensor4D; kept: tf.Tensor[]; head: (p: tf.Tensor4D[]) => tf.Tensor; activations: tf.Tensor4D[]; roots: boolean[] }
    const parts: Part[] = [];
    const release = () => {
      for (const part of parts.splice(0)) {
        for (const t of part.kept) t.dispose();
        part.x.dispose();
      }
    };
    try {
      let numClasses = 0;
      const logitRows: Float32Array[] = [];
      const actParts: Float32Array[][] = layers.map(() => []);
      const shapes: LayerActivations['shape'][] = [];
      // the forward pass without a layer still needs one (the logits): the default layer's plan serves
      const forwardLayers = layers.length ? layers : [source.defaultLayer];
      for (let start = 0; start < n; start += forwardChunk) {
        const count = Math.min(forwardChunk, n - start);
        const x = toModel(start, count);
        let part: Part;
        // x stays alive with the part: the head may read the input itself (a skip from the input)
        try {
          let f: ReturnType<GradientSource['forward']> | undefined;
          const kept = tf.tidy(() => {
            f = source.forward(x, forwardLayers);
            const l = f.logits.rank === 2 ? f.logits : tf.reshape(f.logits, [count, -1]);
            return [l, ...f.activations, ...f.state];
          });
          const fr = f as ReturnType<GradientSource['forward']>;
          part = { start, count, x, kept, head: fr.head, roots: fr.roots, activations: kept.slice(1, 1 + forwardLayers.length) as tf.Tensor4D[] };
        } catch (e) {
          x.dispose();
          throw e;
        }
        parts.push(part);
        const logitsT = part.kept[0];
        if (logitsT.rank !== 2 || logitsT.shape[0] !== count) {
          throw new GradcamError(`the model returned logits of shape [${logitsT.shape}] for ${count} images`, 'EMODEL');
        }
        numClasses = logitsT.shape[1] as number;
        logitRows.push(copyOut(logitsT));
        layers.forEach((name, j) => {
          const actT = part.activations[j];
          if (actT.rank !== 4) throw new GradcamError(`layer '${name}' output is not 4-D`, 'EMODEL');
          const [, d1, d2, d3] = actT.shape;
          const [k, h, w] = source.layout === 'nhwc' ? [d3, d1, d2] : [d1, d2, d3];
          shapes[j] = { n, k, h, w, layout: source.layout };
          actParts[j].push(copyOut(actT));
        });
        if (!needsHead && !request.score) {
          // nothing more is read from this forward pass but its logits
          for (const t of part.kept) t.dispose();
          part.kept = [];
        }
        if (start + count < n) await yieldToLoop();
      }
      const logits = concatFloat32(logitRows);
      const activations: LayerActivations[] = layers.map((name, j) => ({ name, shape: shapes[j], data: concatFloat32(actParts[j]) }));
      const custom = request.score;
      const sign = request.counterfactual ? -1 : 1;
      /** the differentiated objective for images [start, start+count): sum of their (signed) scores */
      const objective = (l: tf.Tensor, classes: Int32Array, start: number, count: number): tf.Scalar => {
        const l2 = tf.reshape(l, [count, numClasses]) as tf.Tensor2D;
        if (custom) return tf.mul(tf.sum(customScores(custom, l2, count)), sign);
        return tf.sum(tf.mul(l2, selection(classes.subarray(start, start + count), numClasses, sign)));
      };
      let scores: Float32Array | undefined;
      if (custom) {
        scores = new Float32Array(n);
        for (const part of parts) {
          scores.set(tf.tidy(() => copyOut(customScores(custom, part.kept[0] as tf.Tensor2D, part.count))), part.start);
        }
      }
      const mode: RunMode | undefined = request.inputGradient ? { rule: request.inputGradient, relu6: request.guidedRelu6 } : undefined;
      const perFeature = shapes.map((s) => s.k * s.h * s.w);
      const round = async (classes: Int32Array): Promise<RoundGradients> => {
        await yieldToLoop();
        const out: RoundGradients = { classes, scores, layerGrads: [] };
        if (needsHead) {
          const grads = perFeature.map((p) => new Float32Array(n * p));
          for (const part of parts) {
            const { head, activations: acts, roots, start, count } = part;
            const gs = tf.tidy(() => {
              const points = acts.map((a, j) => (roots[j] ? a : tf.zerosLike(a)));
              const g = tf.grads((...pts: tf.Tensor[]) => objective(head(pts as tf.Tensor4D[]), classes, start, count))(points);
              return g.map(copyOut);
            });
            gs.forEach((g, j) => grads[j].set(g, start * perFeature[j]));
          }
          out.layerGrads = grads;
        }
        if (mode) {
          const gx = new Float32Array(batch.data.length);
          for (let start = 0; start < n; start += gradChunk) {
            const count = Math.min(gradChunk, n - start);
            if (start > 0) await yieldToLoop();
            const g = tf.tidy(() => {
              const xi0 = toModel(start, count);
              const d = tf.grad((xi: tf.Tensor) => objective(source.logitsOf(xi as tf.Tensor4D, mode), classes, start, count))(xi0);
              return copyOut(toInputLayout(d as tf.Tensor4D));
            });
            gx.set(g, start * perInput);
          }
          out.inputGradient = gx;
        }
        return out;
      };
      return { logits, numClasses, activations, round, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.source.dispose();
  }
}

/** Where a tfjs explainer's model computes. */
export type TfjsThread = 'worker' | 'main';

/** A tfjs ModelAdapter: in this thread (TfjsAdapter) or a proxy of one in a worker thread (TfjsWorkerAdapter). */
export interface TfjsModelAdapter extends ModelAdapter {
  readonly engine: TfjsEngine;
  readonly thread: TfjsThread;
  /** why the model computes there */
  readonly threadReason: string;
  /** layer types run through layer.apply */
  readonly fallbackLayers: string[];
}

/** The Explainer over a tfjs model: the shared pipeline on a tfjs adapter (in a worker thread or this one). */
export class TfjsExplainer implements Explainer {
  /** explain() copies the batch at call time (lib/cam/explain.ts) */
  readonly [COPIES_INPUT] = true;
  constructor(readonly adapter: TfjsModelAdapter) {}
  get engine(): TfjsEngine {
    return this.adapter.engine;
  }
  /**
   * 'worker': the model computes in a worker thread and explain() leaves the event loop free (the
   * default); 'main': in this thread, and each forward or backward pass blocks the event loop (with
   * `workers: 0`, for a SplitModel, for a model that could not be serialized; `threadReason` says why).
   */
  get thread(): TfjsThread {
    return this.adapter.thread;
  }
  get threadReason(): string {
    return this.adapter.threadReason;
  }
  /** the model's declared input shape, NHWC; null where unknown */
  get inputShape(): Array<number | null> {
    return this.adapter.inputShape;
  }
  /**
   * Layer types the interpreter ran through layer.apply (unknown to it): ReLUs inside them keep
   * the plain backward rule under every input-gradient rule. Empty for the common CNN layers.
   */
  get fallbackLayers(): string[] {
    return this.adapter.fallbackLayers;
  }
  get layout(): Layout {
    return this.adapter.layout;
  }
  get defaultLayer(): string {
    return this.adapter.defaultLayer;
  }
  layers(): LayerInfo[] {
    return this.adapter.layers();
  }
  /**
   * `input`: an InputBatch, or a 4-D tf.Tensor [n,H,W,C] (NHWC, as tfjs models take it; read once,
   * not disposed: it stays the caller's).
   */
  explain(input: InputBatch | tf.Tensor, options?: ExplainOptions): Promise<ExplainResult> {
    return explain(this.adapter, input, options);
  }
  /** checks the options (the model is ready at creation: nothing to build) */
  prepare(options?: ExplainOptions, inputSize?: [number, number]): Promise<void> {
    return prepare(this.adapter, options, inputSize);
  }
  dispose(): void {
    this.adapter.dispose();
  }
}
