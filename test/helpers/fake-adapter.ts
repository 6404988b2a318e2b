/**
 * A model adapter whose "model" is a few lines of arithmetic, so that the pipeline (lib/cam/explain.ts)
 * can be checked against values computed independently in a test:
 *  - input [n,c,H,W] (nchw) or [n,H,W,c] (nhwc);
 *  - layer 'a' [n,k,H/2,W/2]: A[k] = (k+1)·avgpool2x2(x[k mod c]) + 0.1·k, layer 'b' [n,k2,H/4,W/4] likewise from x;
 *  - logits [n,numClasses]: logit_j = Σ A·(j+1)/size - j (any fixed numbers will do);
 *  - dY/dA for class j: a seeded pseudo-random array per (layer, class, image), times -1 when counterfactual;
 *  - dY/dx for class j: seeded per (rule, class, image).
 */
import type { AdapterPass, GradientRequest, ModelAdapter, RoundGradients } from '../../lib/cam/adapter';
import { checkInputBatch } from '../../lib/cam/input';
import type { FeatureShape } from '../../lib/kernels/types';
import type { InputBatch, LayerInfo, Layout } from '../../lib/types';

export function seeded(len: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0;
  return Float32Array.from({ length: len }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

export interface FakeOptions {
  layout?: Layout;
  numClasses?: number;
  k?: number;
  /** make image i's gradients NaN */
  nanImage?: number;
}

export class FakeAdapter implements ModelAdapter {
  readonly engine = 'fake';
  readonly defaultLayer = 'a';
  readonly supportsCustomScore = true;
  readonly layout: Layout;
  readonly numClasses: number;
  readonly k: number;
  /** what begin() was asked, for assertions */
  requests: GradientRequest[] = [];
  batches: InputBatch[] = [];
  constructor(readonly options: FakeOptions = {}) {
    this.layout = options.layout ?? 'nchw';
    this.numClasses = options.numClasses ?? 6;
    this.k = options.k ?? 4;
  }
  get inputShape(): Array<number | null> {
    return [null, null, null, null];
  }
  layers(): LayerInfo[] {
    return [
      { name: 'a', type: 'Fake', shape: [null, this.k, null, null], isDefault: true },
      { name: 'b', type: 'Fake', shape: [null, this.k + 1, null, null], isDefault: false },
    ];
  }
  checkInput(input: unknown): InputBatch {
    return checkInputBatch(input, this.layout);
  }
  resolveLayer(name: string): string {
    if (name !== 'a' && name !== 'b') throw new RangeError(`Expected 'a' or 'b' for layer but received '${name}'`);
    return name;
  }
  unsupported(): Error | undefined {
    return undefined;
  }

  /** the activations of a layer for a batch */
  activationsOf(batch: InputBatch, layer: string): { shape: FeatureShape; data: Float32Array } {
    const [n, d1, d2, d3] = batch.shape;
    const [c, H, W] = batch.layout === 'nchw' ? [d1, d2, d3] : [d3, d1, d2];
    const f = layer === 'a' ? 2 : 4;
    const k = layer === 'a' ? this.k : this.k + 1;
    const h = Math.floor(H / f);
    const w = Math.floor(W / f);
    const shape: FeatureShape = { n, k, h, w, layout: batch.layout };
    const data = new Float32Array(n * k * h * w);
    const px = (i: number, ch: number, y: number, x: number) =>
      batch.data[batch.layout === 'nchw' ? ((i * c + ch) * H + y) * W + x : ((i * H + y) * W + x) * c + ch];
    for (let i = 0; i < n; i++) for (let kk = 0; kk < k; kk++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += px(i, kk % c, y * f + dy, x * f + dx);
      const v = (kk + 1) * (s / (f * f)) + 0.1 * kk;
      data[batch.layout === 'nchw' ? ((i * k + kk) * h + y) * w + x : ((i * h + y) * w + x) * k + kk] = v;
    }
    return { shape, data };
  }

  async begin(batch: InputBatch, request: GradientRequest): Promise<AdapterPass> {
    this.requests.push(request);
    this.batches.push(batch);
    const n = batch.shape[0];
    const per = batch.data.length / n;
    const acts = request.layers.map((l) => ({ name: l, ...this.activationsOf(batch, l) }));
    const a = this.activationsOf(batch, 'a');
    const perA = a.data.length / n;
    const logits = new Float32Array(n * this.numClasses);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < perA; j++) s += a.data[i * perA + j];
      for (let j = 0; j < this.numClasses; j++) logits[i * this.numClasses + j] = ((j % 3) + 1) * s / perA - j * 0.01 * (i + 1);
    }
    const sign = request.counterfactual ? -1 : 1;
    const round = async (classes: Int32Array): Promise<RoundGradients> => {
      const layerGrads = request.layerGrads ? acts.map((act, l) => {
        const g = new Float32Array(act.data.length);
        const pl = act.data.length / n;
        for (let i = 0; i < n; i++) {
          if (classes[i] < 0 && !request.score) continue;
          const part = seeded(pl, 1000 * (l + 1) + 37 * Math.max(classes[i], 0) + (i % 8));
          for (let j = 0; j < pl; j++) g[i * pl + j] = sign * part[j] * (this.options.nanImage === i ? NaN : 1);
        }
        return g;
      }) : [];
      let inputGradient: Float32Array | undefined;
      if (request.inputGradient) {
        inputGradient = new Float32Array(batch.data.length);
        const ruleSeed = ['plain', 'guided', 'deconvnet'].indexOf(request.inputGradient) + 7;
        for (let i = 0; i < n; i++) {
          if (classes[i] < 0 && !request.score) continue;
          inputGradient.set(seeded(per, 100 * ruleSeed + classes[i] + 3 * (i % 8)).map((v) => sign * v), i * per);
        }
      }
      const scores = request.score ? Float32Array.from({ length: n }, (_, i) => i - 0.5) : undefined;
      return { classes, layerGrads, inputGradient, scores };
    };
    return { logits, numClasses: this.numClasses, activations: acts, round, release: () => undefined };
  }
  dispose(): void {
    /* nothing held */
  }
}
