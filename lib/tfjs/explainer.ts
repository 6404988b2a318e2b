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
import { assembleResult, type GradientRound } from '../cam/pipeline';
import { resolveTargets, targetRounds } from '../cam/targets';
import { checkInputBatch } from '../cam/input';
import { GradcamError, checkBoolean, checkOneOf, invalidRange, invalidType } from '../errors';
import type { ExplainOptions, ExplainResult, Explainer, InputBatch, LayerInfo, Layout, Method } from '../types';
import { METHODS } from '../types';
import { ensureBackend, type TfjsEngine } from './engine';
import type { RunMode } from './ops';
import { PLAIN } from './ops';
import { descendants, evaluate, frontier, type Program } from './program';

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function copyOut(t: tf.Tensor): Float32Array {
  return new Float32Array(t.dataSync() as Float32Array);
}

/** One-hot selection [n, classes] of each image's class, times the sign. */
function selection(classes: Int32Array, numClasses: number, sign: number): tf.Tensor2D {
  const n = classes.length;
  const sel = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) if (classes[i] >= 0) sel[i * numClasses + classes[i]] = sign;
  return tf.tensor2d(sel, [n, numClasses]);
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
  dispose(): void {
    /* nothing owned */
  }
}

export class TfjsExplainer implements Explainer {
  private disposed = false;
  constructor(private readonly source: GradientSource & { hasLayer(name: string): boolean }, readonly engine: TfjsEngine) {}

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

  async explain(input: InputBatch, options: ExplainOptions = {}): Promise<ExplainResult> {
    const startedAt = performance.now();
    if (this.disposed) throw new GradcamError('this explainer has been disposed', 'EDISPOSED');
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
    const batch = checkInputBatch(input, { layout: this.source.layout === 'nhwc' ? undefined : this.source.layout, channels: C ?? undefined, height: H ?? undefined, width: W ?? undefined });
    if (batch.layout === 'nchw' && this.source.layout !== 'nhwc') {
      throw invalidRange('input.layout', `'${this.source.layout}' (the model's layout)`, batch.layout);
    }
    ensureBackend(this.engine);

    const n = batch.shape[0];
    const toModel = (): tf.Tensor4D =>
      tf.tidy(() => {
        const t = tf.tensor4d(batch.data, batch.shape);
        return batch.layout === 'nchw' && this.source.layout === 'nhwc' ? tf.transpose(t, [0, 2, 3, 1]) : t;
      });
    const toInputLayout = (g: tf.Tensor4D): tf.Tensor4D =>
      batch.layout === 'nchw' && this.source.layout === 'nhwc' ? tf.transpose(g, [0, 3, 1, 2]) : g;

    const t0 = performance.now();
    let kept: tf.Tensor[] = [];
    let x: tf.Tensor4D | undefined;
    try {
      let head: ((a: tf.Tensor4D) => tf.Tensor) | undefined;
      let activationsT: tf.Tensor4D | undefined;
      let logits: Float32Array;
      let numClasses: number;
      let activations: Float32Array = new Float32Array(0);
      let featureShape = { n, k: 0, h: 0, w: 0, layout: 'nhwc' as Layout };
      x = toModel();
      const xin = x;
      let headFn: ((a: tf.Tensor4D) => tf.Tensor) | undefined;
      const fwd = tf.tidy(() => {
        const f = this.source.forward(xin, layer);
        headFn = f.head;
        const l = f.logits.rank === 2 ? f.logits : tf.reshape(f.logits, [n, -1]);
        return [l, f.activations, ...f.state];
      });
      kept = fwd;
      head = headFn;
      const logitsT = fwd[0];
      const actT = fwd[1] as tf.Tensor4D;
      activationsT = actT;
      if (logitsT.shape[0] !== n) throw new GradcamError(`the model returned ${logitsT.shape[0]} rows of logits for ${n} images`, 'EMODEL');
      numClasses = logitsT.shape[1] as number;
      logits = copyOut(logitsT);
      if (actT.rank !== 4) throw new GradcamError(`layer '${layer}' output is not 4-D`, 'EMODEL');
      if (needsCam) {
        const [, d1, d2, d3] = actT.shape;
        const [k, h, w] = this.source.layout === 'nhwc' ? [d3, d1, d2] : [d1, d2, d3];
        featureShape = { n, k, h, w, layout: this.source.layout };
        activations = copyOut(actT);
      }
      const perImage = resolveTargets(options.targets, logits, n, numClasses);
      const classRounds = targetRounds(perImage);
      const sign = counterfactual ? -1 : 1;
      const rounds: GradientRound[] = [];
      const guidedMode: RunMode = { guided: true, guidedRelu6 };
      for (const classes of classRounds) {
        await yieldToLoop();
        const round: GradientRound = { classes };
        if (needsCam && head && activationsT) {
          const h = head;
          const a = activationsT;
          round.grads = tf.tidy(() => {
            const sel = selection(classes, numClasses, sign);
            const g = tf.grad((ai: tf.Tensor) => tf.sum(tf.mul(tf.reshape(h(ai as tf.Tensor4D), [n, numClasses]), sel)))(a);
            return copyOut(g);
          });
        }
        if (needsGuided) {
          round.guided = tf.tidy(() => {
            const sel = selection(classes, numClasses, sign);
            const g = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.reshape(this.source.logitsOf(xi as tf.Tensor4D, guidedMode), [n, numClasses]), sel)))(xin);
            return copyOut(toInputLayout(g as tf.Tensor4D));
          });
        }
        rounds.push(round);
      }
      for (const t of kept) t.dispose();
      kept = [];
      x.dispose();
      x = undefined;
      const gradientsMs = performance.now() - t0;
      return await assembleResult({
        method, layer, counterfactual,
        inputShape: batch.shape, layout: batch.layout,
        featureShape, activations, logits, numClasses, rounds,
        engine: this.engine, device: options.device, gradientsMs, startedAt,
      });
    } finally {
      for (const t of kept) t.dispose();
      x?.dispose();
    }
  }
}
