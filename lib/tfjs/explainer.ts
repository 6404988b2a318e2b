/**
 * The tfjs Explainer: one forward pass (no tape) for the logits and the target-layer activations
 * A, then per target round one batched backward pass through the head for dY/dA and, for the
 * guided methods, one guided backward pass through the whole network for dY/dx. The CAM maths
 * runs in the shared pipeline (lib/cam/pipeline.ts).
 *
 * All tensor work runs in synchronous tf.tidy blocks that return plain arrays; the promise yields
 * to the event loop between them, and nothing outlives a call except the model's own tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../arrays';
import { assembleResult, type GradientRound } from '../cam/pipeline';
import { isCustomScore, resolveTargets, targetRounds } from '../cam/targets';
import { checkInputBatch } from '../cam/input';
import { GradcamError, checkBoolean, checkOneOf, describe, invalidRange, invalidType } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch, LayerInfo, Layout, Method, ScoreFunction } from '../types';
import { METHODS } from '../types';
import { ensureBackend, type TfjsEngine } from './engine';
import type { RunMode } from './ops';
import { PLAIN } from './ops';
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
  if (t.isDisposed) throw new RangeError('Expected a live tf.Tensor for input but received a disposed tf.Tensor');
  if (t.rank !== 4) throw new RangeError(`Expected a 4-D tf.Tensor [n, H, W, C] (NHWC) for input but received a tf.Tensor of shape [${t.shape}]`);
  const values = t.dataSync();
  const data = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  return { data, shape: t.shape as [number, number, number, number], layout: 'nhwc' };
}

/** A custom score function's output for `count` images, checked: a tf.Tensor of n scores. */
function customScores(fn: ScoreFunction, logits: tf.Tensor2D, count: number): tf.Tensor1D {
  const out: unknown = fn(logits);
  if (!(out instanceof tf.Tensor) || out.size !== count || (out.rank !== 1 && !(out.rank === 2 && out.shape[1] === 1))) {
    const got = out instanceof tf.Tensor ? `a tf.Tensor of shape [${out.shape}]` : describe(out);
    throw new TypeError(`Expected function returning a tf.Tensor of shape [${count}] (one score per image) for targets.score but received ${got}`);
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
  /** forward: logits [n,classes] and the target activations A [n,h,w,k] (kept: the caller disposes) */
  forward(x: tf.Tensor4D, layer: string): { logits: tf.Tensor; activations: tf.Tensor4D; state: tf.Tensor[]; head: (a: tf.Tensor4D) => tf.Tensor };
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
  private readonly plans = new Map<string, { down: Set<string>; keep: string[] }>();

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

  private plan(key: string) {
    let p = this.plans.get(key);
    if (!p) {
      const down = descendants(this.program, key);
      p = { down, keep: frontier(this.program, key, down) };
      this.plans.set(key, p);
    }
    return p;
  }

  forward(x: tf.Tensor4D, layer: string) {
    const key = this.byName.get(layer) as string;
    const { down, keep } = this.plan(key);
    const values = new Map<string, tf.Tensor>([[this.program.inputKey, x]]);
    const logits = evaluate(this.program, values, PLAIN);
    const activations = values.get(key) as tf.Tensor4D;
    const state = keep.map((k) => values.get(k) as tf.Tensor);
    const head = (a: tf.Tensor4D) => {
      const v = new Map<string, tf.Tensor>();
      keep.forEach((k, i) => v.set(k, state[i]));
      v.set(key, a);
      if (!down.has(this.program.logitsKey) && key !== this.program.logitsKey) {
        throw new GradcamError(`the logits do not depend on layer '${layer}'`, 'EMODEL');
      }
      return evaluate(this.program, v, PLAIN, down);
    };
    return { logits, activations, state: [logits, activations, ...state], head };
  }

  logitsOf(x: tf.Tensor4D, mode: RunMode): tf.Tensor {
    return evaluate(this.program, new Map([[this.program.inputKey, x]]), mode);
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
    return { logits, activations, state: [logits, activations], head: (a: tf.Tensor4D) => this.model.head(a) };
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

export class TfjsExplainer implements Explainer {
  private disposed = false;
  constructor(private readonly source: GradientSource & { hasLayer(name: string): boolean }, readonly engine: TfjsEngine) {}

  /** the model's declared input shape, NHWC; null where unknown */
  get inputShape(): Array<number | null> {
    return this.source.inputShape.slice();
  }

  /**
   * Layer types the interpreter ran through layer.apply (unknown to it): ReLUs inside them keep
   * the plain backward rule in guided backprop. Empty for the common CNN layers.
   */
  get fallbackLayers(): string[] {
    return this.source instanceof ProgramSource ? [...new Set(this.source.program.fallbacks)] : [];
  }

  get layout(): Layout {
    return this.source.layout;
  }
  get defaultLayer(): string {
    return this.source.defaultLayer;
  }
  layers(): LayerInfo[] {
    return this.source.layers();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.source.dispose();
  }

  /**
   * `input`: an InputBatch, or a 4-D tf.Tensor [n,H,W,C] (NHWC, as tfjs models take it; read once,
   * not disposed: it stays the caller's).
   */
  async explain(input: InputBatch | tf.Tensor, options: ExplainOptions = {}): Promise<ExplainResult> {
    const startedAt = performance.now();
    if (this.disposed) throw new GradcamError('this explainer has been disposed', 'EDISPOSED');
    if (input instanceof tf.Tensor) input = tensorToBatch(input);
    if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
    const method: Method = options.method === undefined ? 'gradcam' : checkOneOf('method', options.method, METHODS);
    const counterfactual = options.counterfactual === undefined ? false : checkBoolean('counterfactual', options.counterfactual);
    const guidedRelu6 = options.guidedRelu6 === undefined ? false : checkBoolean('guidedRelu6', options.guidedRelu6);
    const layer = options.layer === undefined ? this.source.defaultLayer : options.layer;
    if (typeof layer !== 'string') throw invalidType('layer', 'string', layer);
    if (!this.source.hasLayer(layer)) {
      const names = this.source.layers().map((l) => l.name);
      const shown = names.length > 8 ? `${names.slice(-8).join(', ')} (and ${names.length - 8} more, see layers())` : names.join(', ');
      throw invalidRange('layer', `the name of a 4-D layer of the model (${shown})`, layer);
    }
    const needsCam = method !== 'guided-backprop';
    const needsGuided = method !== 'gradcam';
    if (needsGuided && !this.source.supportsGuided) {
      throw new GradcamError(`method '${method}' needs a LayersModel or GraphModel: guided ReLUs cannot be placed inside a SplitModel`, 'EUNSUPPORTED');
    }
    const [, H, W, C] = this.source.inputShape;
    // tfjs models are NHWC but NCHW batches are accepted (transposed in-graph): compare in the batch's own order
    const nchwBatch = (input as Partial<InputBatch> | null)?.layout === 'nchw';
    const batch = checkInputBatch(input, this.source.layout === 'nhwc' ? undefined : this.source.layout,
      nchwBatch ? [null, C, H, W] : [null, H, W, C]);
    ensureBackend(this.engine);

    const n = batch.shape[0];
    const perInput = batch.data.length / n;
    /** images [start, start+count) as a model-layout tensor */
    const toModel = (start: number, count: number): tf.Tensor4D =>
      tf.tidy(() => {
        const shape: [number, number, number, number] = [count, batch.shape[1], batch.shape[2], batch.shape[3]];
        const t = tf.tensor4d(batch.data.subarray(start * perInput, (start + count) * perInput), shape);
        return batch.layout === 'nchw' && this.source.layout === 'nhwc' ? tf.transpose(t, [0, 2, 3, 1]) : t;
      });
    const toInputLayout = (g: tf.Tensor4D): tf.Tensor4D =>
      batch.layout === 'nchw' && this.source.layout === 'nhwc' ? tf.transpose(g, [0, 3, 1, 2]) : g;

    // Images go through in chunks sized to the engine's memory (wasm has a 4 GB heap; a guided
    // pass keeps about six times the model's activations alive): results do not depend on it.
    const chunkOf = (factor: number) => chunkSize(this.engine, this.source.bytesPerImage() * factor, n);
    const forwardChunk = chunkOf(1.5);
    const gradChunk = needsGuided ? chunkOf(6) : forwardChunk;

    const t0 = performance.now();
    interface Part { start: number; count: number; x: tf.Tensor4D; kept: tf.Tensor[]; head: (a: tf.Tensor4D) => tf.Tensor; activations: tf.Tensor4D }
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
      const actParts: Float32Array[] = [];
      let featureShape = { n, k: 0, h: 0, w: 0, layout: this.source.layout };
      // forward: logits and activations of every chunk; each chunk keeps what its head pass reads
      for (let start = 0; start < n; start += forwardChunk) {
        const count = Math.min(forwardChunk, n - start);
        const x = toModel(start, count);
        let headFn: ((a: tf.Tensor4D) => tf.Tensor) | undefined;
        let kept: tf.Tensor[];
        try {
          kept = tf.tidy(() => {
            const f = this.source.forward(x, layer);
            headFn = f.head;
            const l = f.logits.rank === 2 ? f.logits : tf.reshape(f.logits, [count, -1]);
            return [l, f.activations, ...f.state];
          });
        } catch (e) {
          x.dispose();
          throw e;
        }
        const part: Part = { start, count, x, kept, head: headFn as (a: tf.Tensor4D) => tf.Tensor, activations: kept[1] as tf.Tensor4D };
        parts.push(part);
        const logitsT = kept[0];
        if (logitsT.rank !== 2 || logitsT.shape[0] !== count) {
          throw new GradcamError(`the model returned logits of shape [${logitsT.shape}] for ${count} images`, 'EMODEL');
        }
        numClasses = logitsT.shape[1] as number;
        logitRows.push(copyOut(logitsT));
        const actT = part.activations;
        if (actT.rank !== 4) throw new GradcamError(`layer '${layer}' output is not 4-D`, 'EMODEL');
        if (needsCam) {
          const [, d1, d2, d3] = actT.shape;
          const [k, h, w] = this.source.layout === 'nhwc' ? [d3, d1, d2] : [d1, d2, d3];
          featureShape = { n, k, h, w, layout: this.source.layout };
          actParts.push(copyOut(actT));
        }
        if (!needsCam) {
          // guided backprop alone needs nothing more from this forward pass
          for (const t of kept) t.dispose();
          part.kept = [];
        }
        if (start + count < n) await yieldToLoop();
      }
      const logits = concatFloat32(logitRows);
      const activations = needsCam ? concatFloat32(actParts) : new Float32Array(0);
      const custom = isCustomScore(options.targets) ? options.targets.score : undefined;
      const sign = counterfactual ? -1 : 1;
      /** the differentiated objective for images [start, start+count): sum of their (signed) scores */
      const objective = (l: tf.Tensor, classes: Int32Array, start: number, count: number): tf.Scalar => {
        const l2 = tf.reshape(l, [count, numClasses]) as tf.Tensor2D;
        if (custom) return tf.mul(tf.sum(customScores(custom, l2, count)), sign);
        return tf.sum(tf.mul(l2, selection(classes.subarray(start, start + count), numClasses, sign)));
      };
      const classRounds = custom ? [new Int32Array(n).fill(-1)] : targetRounds(resolveTargets(options.targets, logits, n, numClasses));
      let customValues: Float32Array | undefined;
      if (custom) {
        customValues = new Float32Array(n);
        for (const part of parts) {
          customValues.set(tf.tidy(() => copyOut(customScores(custom, part.kept[0] as tf.Tensor2D, part.count))), part.start);
        }
      }
      const rounds: GradientRound[] = [];
      const guidedMode: RunMode = { guided: true, guidedRelu6 };
      const perFeature = featureShape.k * featureShape.h * featureShape.w;
      for (const classes of classRounds) {
        await yieldToLoop();
        const round: GradientRound = { classes, scores: customValues };
        if (needsCam) {
          const grads = new Float32Array(n * perFeature);
          for (const part of parts) {
            const { head, activations: a, start, count } = part;
            const g = tf.tidy(() => copyOut(tf.grad((ai: tf.Tensor) => objective(head(ai as tf.Tensor4D), classes, start, count))(a)));
            grads.set(g, start * perFeature);
          }
          round.grads = grads;
        }
        if (needsGuided) {
          const guided = new Float32Array(batch.data.length);
          for (let start = 0; start < n; start += gradChunk) {
            const count = Math.min(gradChunk, n - start);
            if (start > 0) await yieldToLoop();
            const g = tf.tidy(() => {
              const xi0 = toModel(start, count);
              const gx = tf.grad((xi: tf.Tensor) => objective(this.source.logitsOf(xi as tf.Tensor4D, guidedMode), classes, start, count))(xi0);
              return copyOut(toInputLayout(gx as tf.Tensor4D));
            });
            guided.set(g, start * perInput);
          }
          round.guided = guided;
        }
        rounds.push(round);
      }
      release();
      const gradientsMs = performance.now() - t0;
      return await assembleResult({
        method, layer, counterfactual,
        inputShape: batch.shape, layout: batch.layout,
        featureShape, activations, logits, numClasses, rounds,
        engine: this.engine, device: options.device, gradientsMs, startedAt,
      });
    } finally {
      release();
    }
  }
}
