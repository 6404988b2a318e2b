/**
 * The backward-graph generator: appends to an ONNX model, as ordinary ONNX operators, the
 * gradient of Y = sign * sum_n logits[n, class_n] with respect to target tensors (the CAM
 * family's dY/dA) and, optionally, to the input with the guided-ReLU rule (guided backprop).
 * ONNX Runtime then runs forward and backward in one session run.
 *
 * New graph inputs:  gradcam_class int64 [N] (class per image; -1 = argmax computed in the
 *                    graph; any other negative value = no class, a zero seed row),
 *                    gradcam_sign float [] (+1, or -1 for counterfactual maps).
 * New graph outputs: gradcam_classes int64 [N] (the classes used), the target tensors
 *                    themselves (activations), gradcam_grad_<i> per target, gradcam_input_grad.
 *
 * One rule per op (RULES below). A rule receives the gradient of the node's outputs and returns
 * the gradient of its differentiable inputs. Only the nodes between the sources (targets, or the
 * input for the full backward) and the logits are differentiated.
 */
import { GradcamError } from '../errors';
import {
  GraphIndex, InferredGraph, NON_DIFFERENTIABLE, Shape, inferShapes, isFloatType, resizeOutput,
  sliceParams, splitSizes, windowGeometry,
} from './graph';
import {
  AttrValue, DataType, ModelProto, NodeProto, TensorProto, ValueInfoProto, attr, floatTensor, getAttr,
  int64Tensor,
} from './proto';

export interface BackwardOptions {
  /** target tensors for dY/dA (may be empty when only the input gradient is wanted) */
  layers: string[];
  /** also output dY/dinput (full backward) */
  inputGrad?: boolean;
  /** the input gradient uses guided ReLU (default true when inputGrad) */
  guided?: boolean;
  /** guide Clip (ReLU6) like ReLU as well (default false) */
  guidedRelu6?: boolean;
  /** node names whose ReLU keeps the plain rule in guided mode */
  unguidedNodes?: string[];
  /** the data input's shape, batch -1; default: the model's declared input shape */
  inputShape?: Shape;
  /** the logits tensor; default: the model's first output */
  logits?: string;
  /** strided Conv backward: 'convtranspose' (default) or 'polyphase' (stride-1 convolutions per output phase) */
  stridedConv?: 'auto' | 'polyphase' | 'convtranspose';
}

export interface GradientModel {
  model: ModelProto;
  input: string;
  logits: string;
  classInput: string;
  signInput: string;
  classesOutput: string;
  /** target tensor names, which are outputs of the model (the activations) */
  layers: string[];
  /** gradient output per target */
  gradOutputs: string[];
  inputGradOutput?: string;
  /** static shapes of the targets (batch -1) */
  layerShapes: Shape[];
  /** number of backward nodes appended */
  backwardNodes: number;
  /** opset of the generated model */
  opset: number;
}

export const CLASS_INPUT = 'gradcam_class';
export const SIGN_INPUT = 'gradcam_sign';
export const CLASSES_OUTPUT = 'gradcam_classes';
export const INPUT_GRAD_OUTPUT = 'gradcam_input_grad';

/** 'to the end' for Slice (clamped to the dim); 2^63-1 is not a double, 2^53-1 is */
const INT64_MAX = Number.MAX_SAFE_INTEGER;
/** 'past the start' for a reversed Slice: -2^63 is exactly representable */
const INT64_MIN = -(2 ** 63);

type Grad = string | undefined;

/** How the rule set treats Relu/Clip in the pass being built. */
interface PassMode {
  guided: boolean;
  guidedRelu6: boolean;
  unguided: Set<string>;
}

interface Rule {
  /** indices of inputs that can carry a gradient; 'all' for variadic ops */
  diff: number[] | 'all';
  /** indices of outputs that carry a gradient (default [0]) */
  outs?: number[] | 'all';
  grad(b: Builder, n: NodeProto, gy: Grad[], need: boolean[], mode: PassMode): Grad[];
}

// ------------------------------------------------------------------------------------ builder

/** Emits the backward nodes; identical (op, inputs, attributes) are emitted once. */
export class Builder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private count = 0;
  private readonly cse = new Map<string, string[]>();

  /** how strided Conv layers backpropagate (see convInputGrad) */
  stridedConv: 'auto' | 'polyphase' | 'convtranspose' = 'convtranspose';

  /** emitOpset: the opset of the generated model (what emitted nodes follow) */
  constructor(readonly g: GraphIndex, readonly inf: InferredGraph, readonly emitOpset: number = g.opset) {}

  /** the opset emitted nodes follow */
  get opset(): number {
    return this.emitOpset;
  }

  /** the opset the model's own nodes follow (how to read their arguments) */
  get srcOpset(): number {
    return this.g.opset;
  }

  shape(t: string): Shape | undefined {
    return this.inf.shapes.get(t);
  }

  /** static shape or a GradcamError naming the node that needs it */
  needShape(t: string, n: NodeProto): Shape {
    const s = this.inf.shapes.get(t);
    if (!s) throw new GradcamError(`Cannot differentiate ${n.opType} node '${n.name}': the shape of ${t} is not known statically`, 'EUNSUPPORTED');
    return s;
  }

  value(t: string | undefined): number[] | undefined {
    if (!t) return undefined;
    const v = this.inf.values.get(t);
    return v && v.every((x) => !Number.isNaN(x)) ? v : undefined;
  }

  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, nOut = 1): string[] {
    const key = `${type}|${inputs.join(',')}|${JSON.stringify(attrs)}|${nOut}`;
    const hit = this.cse.get(key);
    if (hit) return hit;
    const outs: string[] = [];
    for (let i = 0; i < nOut; i++) outs.push(`gradcam/${type}_${++this.count}`);
    const nd: NodeProto = {
      opType: type, input: inputs, output: outs, name: outs[0],
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    };
    this.nodes.push(nd);
    this.cse.set(key, outs);
    return outs;
  }

  op1(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.op(type, inputs, attrs)[0];
  }

  private constCache = new Map<string, string>();
  private addConst(key: string, make: (name: string) => TensorProto): string {
    let name = this.constCache.get(key);
    if (!name) {
      name = `gradcam/const_${++this.count}`;
      this.inits.push(make(name));
      this.constCache.set(key, name);
    }
    return name;
  }

  /** float32 constant (scalar when dims = []) */
  f32(values: number[], dims: number[] = []): string {
    const f = Float32Array.from(values);
    return this.addConst(`f|${dims}|${Array.from(f).join(',')}`, (name) => floatTensor(name, dims, f));
  }

  i64(values: number[], dims: number[] = [values.length]): string {
    return this.addConst(`i|${dims}|${values.join(',')}`, (name) => int64Tensor(name, dims, values));
  }

  mul(a: string, b: string): string { return this.op1('Mul', [a, b]); }

  neg(a: string): string { return this.op1('Neg', [a]); }

  /** keep g where mask, 0 elsewhere */
  where(mask: string, g: string): string { return this.op1('Where', [mask, g, this.f32([0])]); }

  reduceSum(x: string, axes: number[], keepdims: 0 | 1): string {
    if (this.opset >= 13) return this.op1('ReduceSum', [x, this.i64(axes)], { keepdims });
    return this.op1('ReduceSum', [x], { axes, keepdims });
  }

  reduceMean(x: string, axes: number[], keepdims: 0 | 1): string {
    if (this.opset >= 18) return this.op1('ReduceMean', [x, this.i64(axes)], { keepdims });
    return this.op1('ReduceMean', [x], { axes, keepdims });
  }

  unsqueeze(x: string, axes: number[]): string {
    if (this.opset >= 13) return this.op1('Unsqueeze', [x, this.i64(axes)]);
    return this.op1('Unsqueeze', [x], { axes });
  }

  shapeOf(x: string): string { return this.op1('Shape', [x]); }

  reshapeLike(g: string, x: string): string { return this.op1('Reshape', [g, this.shapeOf(x)]); }

  slice(x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string {
    const ins = [x, this.i64(starts), this.i64(ends), this.i64(axes)];
    if (steps) ins.push(this.i64(steps));
    return this.op1('Slice', ins);
  }

  pad(x: string, pads: number[]): string {
    if (pads.every((p) => p === 0)) return x;
    if (this.opset >= 11) return this.op1('Pad', [x, this.i64(pads)], { mode: 'constant' });
    return this.op1('Pad', [x], { mode: 'constant', pads });
  }

  /**
   * Sum a broadcast gradient back to the shape of one input: reduce the leading axes the input
   * lacks and the axes where it has size 1 while the output does not.
   */
  reduceTo(g: string, outShape: Shape, inShape: Shape, x: string): string {
    const r = outShape.length;
    const lead = r - inShape.length;
    const axes: number[] = [];
    for (let i = 0; i < r; i++) {
      if (i < lead) { axes.push(i); continue; }
      if (inShape[i - lead] === 1 && outShape[i] !== 1) axes.push(i);
    }
    if (axes.length === 0) return g;
    let s = this.reduceSum(g, axes, 1);
    if (lead > 0) s = this.reshapeLike(s, x);
    return s;
  }
}

// ------------------------------------------------------------------------------------ rules

function ints(n: NodeProto, name: string): number[] | undefined {
  const v = getAttr(n, name);
  return Array.isArray(v) ? v.map(Number) : undefined;
}
function int(n: NodeProto, name: string, d: number): number {
  const v = getAttr(n, name);
  return typeof v === 'number' ? v : d;
}
function flt(n: NodeProto, name: string, d: number): number {
  const v = getAttr(n, name);
  return typeof v === 'number' ? v : d;
}
function str(n: NodeProto, name: string, d: string): string {
  const v = getAttr(n, name);
  return typeof v === 'string' ? v : d;
}
const inp = (n: NodeProto, i: number): string => (n.input ?? [])[i] ?? '';
const out = (n: NodeProto, i: number): string => (n.output ?? [])[i] ?? '';

function unsupported(n: NodeProto, why: string): GradcamError {
  return new GradcamError(`Cannot differentiate ${n.opType} node '${n.name ?? '(unnamed)'}': ${why}`, 'EUNSUPPORTED');
}

const passThrough: Rule = { diff: [0], grad: (_b, _n, gy) => [gy[0]] };
const reshapeBack: Rule = { diff: [0], grad: (b, n, gy) => [b.reshapeLike(gy[0] as string, inp(n, 0))] };

function guidedFor(n: NodeProto, m: PassMode, relu6: boolean): boolean {
  return m.guided && (!relu6 || m.guidedRelu6) && !m.unguided.has(n.name ?? '');
}

function elementwise(b: Builder, n: NodeProto, gy: string, need: boolean[], f: (i: number) => string): Grad[] {
  const y = out(n, 0);
  const oShape = b.needShape(y, n);
  return (n.input ?? []).map((x, i) => {
    if (!need[i]) return undefined;
    return b.reduceTo(f(i), oShape, b.needShape(x, n), x);
  });
}

/** Conv backward to its input: flipped-weight Conv for stride 1, ConvTranspose otherwise. */
function convInputGrad(b: Builder, n: NodeProto, gy: string): string {
  const x = inp(n, 0); const w = inp(n, 1);
  const xs = b.needShape(x, n); const ws = b.needShape(w, n); const ys = b.needShape(out(n, 0), n);
  const nd = xs.length - 2;
  const group = int(n, 'group', 1);
  const geo = windowGeometry(n, xs.slice(2), ws.slice(2));
  const { kernel: k, strides: s, dilations: d, pads: p } = geo;
  if (xs.slice(2).some((v) => v < 0) || ys.slice(2).some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
  const flipPads = [...k.map((kk, i) => d[i] * (kk - 1) - p[i]), ...k.map((kk, i) => d[i] * (kk - 1) - p[nd + i])];
  if (s.every((v) => v === 1) && flipPads.every((v) => v >= 0)) {
    // dX = Conv(dY, W') with W' the per-group transposed, spatially flipped weight, built in the
    // graph from W (ORT folds it once at session creation; the file does not grow)
    const axes = k.map((_, i) => i + 2);
    const flipped = b.slice(transposedWeight(b, w, ws, group), k.map(() => -1), k.map(() => INT64_MIN), axes, k.map(() => -1));
    return b.op1('Conv', [gy, flipped], { dilations: d, group, kernel_shape: k, pads: flipPads, strides: k.map(() => 1) });
  }
  const polyphase = b.stridedConv === 'polyphase' || (b.stridedConv === 'auto' && k.every((kk, i) => kk <= s[i]));
  if (polyphase && nd === 2 && d.every((v) => v === 1) && p.every((v) => v >= 0)) {
    return convInputGradPolyphase(b, gy, xs, ys, ws, w, group, k, s, p);
  }
  const outPad = xs.slice(2).map((xin, i) => xin - ((ys[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - p[i] - p[nd + i]));
  if (outPad.some((v) => v < 0)) throw unsupported(n, `negative output padding ${outPad}`);
  return b.op1('ConvTranspose', [gy, w], { dilations: d, group, kernel_shape: k, pads: p, strides: s, output_padding: outPad });
}

/** The conv weight [Co, Ci/g, k...] as the weight of its transpose: [Ci, Co/g, k...], per group. */
function transposedWeight(b: Builder, w: string, ws: Shape, group: number): string {
  const co = ws[0]; const cig = ws[1]; const k = ws.slice(2);
  if (group === 1) return b.op1('Transpose', [w], { perm: [1, 0, ...k.map((_, i) => i + 2)] });
  if (cig === 1 && co === group) return w;
  let wt = b.op1('Reshape', [w, b.i64([group, co / group, cig, ...k])]);
  wt = b.op1('Transpose', [wt], { perm: [0, 2, 1, ...k.map((_, i) => i + 3)] });
  return b.op1('Reshape', [wt, b.i64([group * cig, co / group, ...k])]);
}

/**
 * Strided 2-D Conv backward as stride-1 convolutions, one per output phase (polyphase): the input
 * positions x with (x + pad) = rho (mod s) receive dY convolved with the taps rho, rho+s, ... of W.
 * The s*s phase results are interleaved back with Concat + Reshape. Same MACs as ConvTranspose,
 * but ORT runs them as ordinary (NCHWc) convolutions.
 */
function convInputGradPolyphase(b: Builder, gy: string, xs: Shape, ys: Shape, ws: Shape, w: string, group: number,
  k: number[], s: number[], p: number[]): string {
  const wt = transposedWeight(b, w, ws, group);
  const ci = ws[1] * group;
  const X = [xs[2], xs[3]]; const ho = [ys[2], ys[3]];
  const L = X.map((x, i) => Math.ceil(x / s[i]));
  const batch = b.slice(b.shapeOf(gy), [0], [1], [0]);
  // residue[c_h][c_w]: dX at positions c + s*j, [N, Ci, L_h, L_w]
  const residue: string[][] = Array.from({ length: s[0] }, () => new Array<string>(s[1]));
  for (let rh = 0; rh < s[0]; rh++) {
    for (let rw = 0; rw < s[1]; rw++) {
      const rho = [rh, rw];
      const M = rho.map((r, i) => Math.ceil((k[i] - r) / s[i]));
      const c = rho.map((r, i) => (((r - p[i]) % s[i]) + s[i]) % s[i]);
      if (M.some((m) => m <= 0)) {
        residue[c[0]][c[1]] = b.op1('ConstantOfShape', [b.op1('Concat', [batch, b.i64([ci, L[0], L[1]])], { axis: 0 })], { value: floatTensor('', [1], [0]) });
        continue;
      }
      // taps rho + s*m, flipped (a full convolution of dY with the sub-kernel)
      let sub = wt;
      for (let i = 0; i < 2; i++) {
        const taps = Array.from({ length: M[i] }, (_, m) => rho[i] + s[i] * (M[i] - 1 - m));
        sub = b.op1('Gather', [sub, b.i64(taps)], { axis: 2 + i });
      }
      const full = b.op1('Conv', [gy, sub], { group, kernel_shape: M, pads: [M[0] - 1, M[1] - 1, M[0] - 1, M[1] - 1], strides: [1, 1] });
      // q = j + delta for the positions x = c + s*j of this residue
      const F = ho.map((h, i) => h + M[i] - 1);
      const delta = c.map((ci2, i) => (ci2 + p[i] - rho[i]) / s[i]);
      const st = delta.map((dl) => Math.max(dl, 0));
      const en = delta.map((dl, i) => Math.min(dl + L[i], F[i]));
      let r = b.slice(full, st, en, [2, 3]);
      const before = delta.map((dl) => Math.max(0, -dl));
      const after = en.map((e, i) => L[i] - before[i] - (e - st[i]));
      r = b.pad(r, [0, 0, before[0], before[1], 0, 0, after[0], after[1]]);
      residue[c[0]][c[1]] = r;
    }
  }
  const rows = residue.map((row) => b.op1('Concat', row.map((r) => b.unsqueeze(r, [3, 5])), { axis: 5 }));
  const stacked = b.op1('Concat', rows, { axis: 3 });
  const inter = b.op1('Reshape', [stacked, b.i64([0, ci, L[0] * s[0], L[1] * s[1]])]);
  return L[0] * s[0] === X[0] && L[1] * s[1] === X[1] ? inter : b.slice(inter, [0, 0], X, [2, 3]);
}

/** Resize interpolation matrix [outLen, inLen] along one axis, following ORT's coordinate rules. */
function resizeMatrix(n: NodeProto, inLen: number, outLen: number, scale: number, srcOpset: number): Float32Array {
  const mode = str(n, 'mode', 'nearest');
  // Upsample and Resize-10 index asymmetrically and take the floor
  const old = srcOpset < 11 || n.opType === 'Upsample';
  const ctm = old ? 'asymmetric' : str(n, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = old ? 'floor' : str(n, 'nearest_mode', 'round_prefer_floor');
  const m = new Float32Array(outLen * inLen);
  for (let o = 0; o < outLen; o++) {
    let xo: number;
    switch (ctm) {
      case 'asymmetric': xo = o / scale; break;
      case 'align_corners': xo = outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1); break;
      case 'pytorch_half_pixel': xo = outLen > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
      case 'tf_half_pixel_for_nn': xo = (o + 0.5) / scale; break;
      case 'half_pixel': xo = (o + 0.5) / scale - 0.5; break;
      default: throw unsupported(n, `coordinate_transformation_mode '${ctm}'`);
    }
    if (mode === 'nearest') {
      let i: number;
      switch (nearestMode) {
        case 'floor': i = Math.floor(xo); break;
        case 'ceil': i = Math.ceil(xo); break;
        case 'round_prefer_ceil': i = Math.round(xo); break;
        default: i = xo - Math.floor(xo) === 0.5 ? Math.floor(xo) : Math.round(xo); break;
      }
      i = Math.max(0, Math.min(inLen - 1, i));
      m[o * inLen + i] += 1;
    } else if (mode === 'linear') {
      const c = Math.max(0, Math.min(inLen - 1, xo));
      const i0 = Math.floor(c); const i1 = Math.min(inLen - 1, i0 + 1);
      const f = c - i0;
      m[o * inLen + i0] += 1 - f;
      m[o * inLen + i1] += f;
    } else {
      throw unsupported(n, `Resize mode '${mode}' (nearest and linear are supported)`);
    }
  }
  return m;
}

function transposeMatrix(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

const gOf = (gy: Grad[]): string => gy[0] as string;

export const RULES: Record<string, Rule> = {
  Identity: passThrough,
  Dropout: passThrough,
  Cast: {
    diff: [0],
    grad: (b, n, gy) => {
      if (!isFloatType(int(n, 'to', DataType.FLOAT))) return [undefined];
      return [gy[0]];
    },
  },
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,

  Relu: {
    diff: [0],
    grad: (b, n, gy, _need, m) => {
      // mask from the OUTPUT (y > 0 <=> x > 0) so ORT keeps its Conv+Relu fusion
      const g = guidedFor(n, m, false) ? b.op1('Relu', [gy[0] as string]) : (gy[0] as string);
      return [b.where(b.op1('Greater', [out(n, 0), b.f32([0])]), g)];
    },
  },
  Clip: {
    diff: [0],
    grad: (b, n, gy, _need, m) => {
      const y = out(n, 0);
      let lo: string | undefined; let hi: string | undefined;
      if (b.srcOpset >= 11) {
        lo = inp(n, 1) || undefined; hi = inp(n, 2) || undefined;
      } else {
        const mn = getAttr(n, 'min'); const mx = getAttr(n, 'max');
        if (typeof mn === 'number') lo = b.f32([mn]);
        if (typeof mx === 'number') hi = b.f32([mx]);
      }
      const g = guidedFor(n, m, true) ? b.op1('Relu', [gy[0] as string]) : (gy[0] as string);
      let mask: string | undefined;
      if (lo) mask = b.op1('Greater', [y, lo]);
      if (hi) {
        const mh = b.op1('Less', [y, hi]);
        mask = mask ? b.op1('And', [mask, mh]) : mh;
      }
      return [mask ? b.where(mask, g) : g];
    },
  },
  LeakyRelu: {
    diff: [0],
    grad: (b, n, gy) => {
      const alpha = flt(n, 'alpha', 0.01);
      const ref = alpha >= 0 ? out(n, 0) : inp(n, 0);
      const g = gy[0] as string;
      return [b.op1('Where', [b.op1('Greater', [ref, b.f32([0])]), g, b.mul(g, b.f32([alpha]))])];
    },
  },
  Sigmoid: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0);
      return [b.mul(gy[0] as string, b.mul(y, b.op1('Sub', [b.f32([1]), y])))];
    },
  },
  Tanh: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0);
      return [b.mul(gy[0] as string, b.op1('Sub', [b.f32([1]), b.mul(y, y)]))];
    },
  },
  HardSigmoid: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0);
      const alpha = flt(n, 'alpha', 0.2);
      const mask = b.op1('And', [b.op1('Greater', [y, b.f32([0])]), b.op1('Less', [y, b.f32([1])])]);
      return [b.where(mask, b.mul(gy[0] as string, b.f32([alpha])))];
    },
  },
  HardSwish: {
    diff: [0],
    grad: (b, n, gy) => {
      // PyTorch: 0 for x < -3, g*(x/3 + 1/2) for -3 <= x <= 3, g for x > 3
      const x = inp(n, 0); const g = gy[0] as string;
      const mid = b.mul(g, b.op1('Add', [b.mul(x, b.f32([1 / 3])), b.f32([0.5])]));
      const upper = b.op1('Where', [b.op1('Greater', [x, b.f32([3])]), g, mid]);
      return [b.op1('Where', [b.op1('Less', [x, b.f32([-3])]), b.f32([0]), upper])];
    },
  },
  Neg: { diff: [0], grad: (b, _n, gy) => [b.neg(gy[0] as string)] },

  Add: { diff: [0, 1], grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, () => gy[0] as string) },
  Sub: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => (i === 0 ? gy[0] as string : b.neg(gy[0] as string))),
  },
  Mul: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => b.mul(gy[0] as string, inp(n, 1 - i))),
  },
  Div: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => {
      const g = gy[0] as string;
      if (i === 0) return b.op1('Div', [g, inp(n, 1)]);
      // d(a/b)/db = -y/b
      return b.neg(b.op1('Div', [b.mul(g, out(n, 0)), inp(n, 1)]));
    }),
  },
  Sum: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, () => gy[0] as string) },
  Mean: {
    diff: 'all',
    grad: (b, n, gy, need) => {
      const s = b.mul(gy[0] as string, b.f32([1 / (n.input ?? []).length]));
      return elementwise(b, n, s, need, () => s);
    },
  },
  Expand: {
    diff: [0],
    grad: (b, n, gy) => [b.reduceTo(gy[0] as string, b.needShape(out(n, 0), n), b.needShape(inp(n, 0), n), inp(n, 0))],
  },

  MatMul: {
    diff: [0, 1],
    grad: (b, n, gy, need) => {
      const a = inp(n, 0); const bb = inp(n, 1);
      const as = b.needShape(a, n); const bs = b.needShape(bb, n); const ys = b.needShape(out(n, 0), n);
      if (as.length < 2 || bs.length < 2) throw unsupported(n, 'MatMul with a 1-D operand');
      const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      const g = gy[0] as string;
      const res: Grad[] = [undefined, undefined];
      if (need[0]) res[0] = b.reduceTo(b.op1('MatMul', [g, b.op1('Transpose', [bb], { perm: swap(bs.length) })]), ys, as, a);
      if (need[1]) res[1] = b.reduceTo(b.op1('MatMul', [b.op1('Transpose', [a], { perm: swap(as.length) }), g]), ys, bs, bb);
      return res;
    },
  },
  Gemm: {
    diff: [0, 1, 2],
    grad: (b, n, gy, need) => {
      const A = inp(n, 0); const B = inp(n, 1); const C = inp(n, 2);
      const tA = int(n, 'transA', 0); const tB = int(n, 'transB', 0);
      const alpha = flt(n, 'alpha', 1); const beta = flt(n, 'beta', 1);
      const g = gy[0] as string;
      const res: Grad[] = [undefined, undefined, undefined];
      if (need[0]) {
        res[0] = tA
          ? b.op1('Gemm', [B, g], { alpha: { float: alpha }, transA: tB, transB: 1 })
          : b.op1('Gemm', [g, B], { alpha: { float: alpha }, transB: tB ? 0 : 1 });
      }
      if (need[1]) {
        res[1] = tB
          ? b.op1('Gemm', [g, A], { alpha: { float: alpha }, transA: 1, transB: tA })
          : b.op1('Gemm', [A, g], { alpha: { float: alpha }, transA: tA ? 0 : 1 });
      }
      if (need[2] && C) {
        const gc = beta === 1 ? g : b.mul(g, b.f32([beta]));
        res[2] = b.reduceTo(gc, b.needShape(out(n, 0), n), b.needShape(C, n), C);
      }
      return res;
    },
  },

  Conv: { diff: [0], grad: (b, n, gy) => [convInputGrad(b, n, gy[0] as string)] },
  ConvTranspose: {
    diff: [0],
    grad: (b, n, gy) => {
      if (ints(n, 'output_shape') || str(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw unsupported(n, 'ConvTranspose with output_shape or auto_pad');
      const xs = b.needShape(inp(n, 0), n); const ws = b.needShape(inp(n, 1), n);
      const nd = xs.length - 2;
      const k = ints(n, 'kernel_shape') ?? ws.slice(2);
      // ConvTranspose(x) is the input-gradient of a Conv with the same weight: its gradient is that Conv
      return [b.op1('Conv', [gy[0] as string, inp(n, 1)], {
        dilations: ints(n, 'dilations') ?? k.map(() => 1), group: int(n, 'group', 1), kernel_shape: k,
        pads: ints(n, 'pads') ?? new Array(2 * nd).fill(0), strides: ints(n, 'strides') ?? k.map(() => 1),
      })];
    },
  },
  BatchNormalization: {
    diff: [0],
    grad: (b, n, gy) => {
      if (int(n, 'training_mode', 0)) throw unsupported(n, 'training mode');
      const xs = b.needShape(inp(n, 0), n);
      const eps = flt(n, 'epsilon', 1e-5);
      // dX = dY * scale / sqrt(var + eps), per channel (constants: ORT folds the factor)
      const f = b.op1('Div', [inp(n, 1), b.op1('Sqrt', [b.op1('Add', [inp(n, 4), b.f32([eps])])])]);
      const fr = b.op1('Reshape', [f, b.i64([-1, ...xs.slice(2).map(() => 1)])]);
      return [b.mul(gy[0] as string, fr)];
    },
  },

  MaxPool: {
    diff: [0],
    grad: (b, n, gy) => {
      if (int(n, 'storage_order', 0) !== 0) throw unsupported(n, 'storage_order=1');
      const x = inp(n, 0);
      // recompute with Indices (ORT: the first maximum of each window, row-major, as PyTorch)
      let idx = out(n, 1);
      if (!idx) {
        const attrs: Record<string, AttrValue> = {};
        for (const a of n.attribute ?? []) {
          const v = getAttr(n, a.name as string);
          if (v !== undefined) attrs[a.name as string] = v as AttrValue;
        }
        idx = b.op('MaxPool', [x], attrs, 2)[1];
      }
      if (!maxPoolOverlaps(n, b.shape(x))) {
        // windows do not overlap: every input position receives at most one gradient, and
        // MaxUnpool places it (cheaper than the scatter-add, and no opset 16 needed)
        const xs = b.needShape(x, n);
        const geo = windowGeometry(n, xs.slice(2));
        return [b.op1('MaxUnpool', [gy[0] as string, idx, b.shapeOf(x)], { kernel_shape: geo.kernel, strides: geo.strides, pads: geo.pads })];
      }
      // scatter-add into a flat zero tensor: overlapping windows that share a maximum sum up
      const flat = b.i64([-1]);
      const zeros = b.op1('ConstantOfShape', [b.shapeOf(b.op1('Reshape', [x, flat]))], { value: floatTensor('', [1], [0]) });
      const g = b.op1('ScatterElements', [zeros, b.op1('Reshape', [idx, flat]), b.op1('Reshape', [gy[0] as string, flat])], { axis: 0, reduction: 'add' });
      return [b.reshapeLike(g, x)];
    },
  },
  AveragePool: {
    diff: [0],
    grad: (b, n, gy) => {
      const x = inp(n, 0);
      const xs = b.needShape(x, n);
      const nd = xs.length - 2;
      const sp = xs.slice(2);
      if (sp.some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
      if ((ints(n, 'dilations') ?? []).some((v) => v !== 1)) throw unsupported(n, 'dilated AveragePool');
      const geo = windowGeometry(n, sp);
      const { kernel: k, strides: s, pads: p, out: o } = geo;
      const include = int(n, 'count_include_pad', 0) === 1;
      // the divisor ORT uses for each output position (windows clipped to the padded extent or the input)
      const divs: number[][] = o.map((len, i) => Array.from({ length: len }, (_, j) => {
        const st = j * s[i] - p[i];
        const en = Math.min(st + k[i], sp[i] + p[nd + i]);
        return include ? en - st : Math.min(en, sp[i]) - Math.max(st, 0);
      }));
      const kprod = k.reduce((a, c) => a * c, 1);
      let g = gy[0] as string;
      const uniform = divs.every((d) => d.every((v) => v === k[divs.indexOf(d)]));
      if (uniform) {
        g = b.mul(g, b.f32([1 / kprod]));
      } else {
        const total = o.reduce((a, c) => a * c, 1);
        const m = new Float32Array(total);
        for (let idx = 0; idx < total; idx++) {
          let rem = idx; let div = 1;
          for (let i = nd - 1; i >= 0; i--) { div *= divs[i][rem % o[i]]; rem = Math.floor(rem / o[i]); }
          m[idx] = 1 / div;
        }
        g = b.mul(g, b.f32(Array.from(m), o));
      }
      // scatter each output back over its window: ConvTranspose with a ones kernel on [N*C,1,...]
      const g1 = b.op1('Reshape', [g, b.i64([-1, 1, ...o])]);
      const full = o.map((len, i) => (len - 1) * s[i] + k[i] - p[i] - p[nd + i]);
      const outPad = sp.map((v, i) => Math.max(0, v - full[i]));
      let ct = b.op1('ConvTranspose', [g1, b.f32(new Array(kprod).fill(1), [1, 1, ...k])], {
        kernel_shape: k, pads: p, strides: s, output_padding: outPad,
      });
      if (full.some((v, i) => v > sp[i])) ct = b.slice(ct, sp.map(() => 0), sp, sp.map((_, i) => i + 2));
      return [b.reshapeLike(ct, x)];
    },
  },
  GlobalAveragePool: {
    diff: [0],
    grad: (b, n, gy) => {
      const x = inp(n, 0);
      const xs = b.needShape(x, n);
      const hw = xs.slice(2).reduce((a, c) => a * c, 1);
      if (hw <= 0) throw unsupported(n, 'spatial size unknown');
      return [b.op1('Expand', [b.mul(gy[0] as string, b.f32([1 / hw])), b.shapeOf(x)])];
    },
  },
  ReduceMean: { diff: [0], grad: (b, n, gy) => [reduceGrad(b, n, gy[0] as string, true)] },
  ReduceSum: { diff: [0], grad: (b, n, gy) => [reduceGrad(b, n, gy[0] as string, false)] },

  Concat: {
    diff: 'all',
    grad: (b, n, gy, need) => {
      const ys = b.needShape(out(n, 0), n);
      const r = ys.length;
      let ax = int(n, 'axis', 0); if (ax < 0) ax += r;
      let off = 0;
      return (n.input ?? []).map((x, i) => {
        const len = b.needShape(x, n)[ax];
        if (len < 0) throw unsupported(n, 'concatenated size unknown');
        const st = off; off += len;
        return need[i] ? b.slice(gy[0] as string, [st], [st + len], [ax]) : undefined;
      });
    },
  },
  Split: {
    diff: [0],
    outs: 'all',
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      let ax = int(n, 'axis', 0); if (ax < 0) ax += xs.length;
      const parts = (n.output ?? []).map((y, i) => gy[i] ?? b.op1('ConstantOfShape', [b.shapeOf(y)], { value: floatTensor('', [1], [0]) }));
      if (!splitSizes(b.g, n, xs[ax], (t) => b.value(t))) throw unsupported(n, 'split sizes unknown');
      return [b.op1('Concat', parts, { axis: ax })];
    },
  },
  Transpose: {
    diff: [0],
    grad: (b, n, gy) => {
      const r = b.needShape(inp(n, 0), n).length;
      const perm = ints(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const invPerm = new Array(r);
      perm.forEach((p, i) => { invPerm[p] = i; });
      return [b.op1('Transpose', [gy[0] as string], { perm: invPerm })];
    },
  },
  Pad: {
    diff: [0],
    grad: (b, n, gy) => {
      const mode = str(n, 'mode', 'constant');
      if (mode !== 'constant') throw unsupported(n, `Pad mode '${mode}' (constant is supported)`);
      if (b.srcOpset >= 18 && inp(n, 3)) throw unsupported(n, 'Pad with axes');
      const pads = b.srcOpset >= 11 ? b.value(inp(n, 1)) : ints(n, 'pads');
      if (!pads) throw unsupported(n, 'pads are not constant');
      if (pads.some((v) => v < 0)) throw unsupported(n, 'negative pads');
      const r = pads.length / 2;
      if (pads.every((v) => v === 0)) return [gy[0]];
      const axes = Array.from({ length: r }, (_, i) => i);
      return [b.slice(gy[0] as string, pads.slice(0, r), pads.slice(r).map((e) => (e > 0 ? -e : INT64_MAX)), axes)];
    },
  },
  Slice: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      const sl = sliceParams(b.g, n, xs, (t) => b.value(t));
      if (!sl) throw unsupported(n, 'slice bounds are not constant');
      const pads = new Array(2 * xs.length).fill(0);
      for (const [ax, st, en, step] of sl) {
        if (step !== 1) throw unsupported(n, 'Slice with step other than 1');
        pads[ax] = st; pads[xs.length + ax] = xs[ax] - Math.max(st, en);
      }
      return [b.pad(gy[0] as string, pads)];
    },
  },
  Gather: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      const idx = b.value(inp(n, 1));
      const is = b.needShape(inp(n, 1), n);
      if (!idx || is.length !== 0) throw unsupported(n, 'Gather on a float tensor with non-constant or non-scalar indices');
      let ax = int(n, 'axis', 0); if (ax < 0) ax += xs.length;
      if (xs[ax] < 0) throw unsupported(n, 'gathered axis size unknown');
      const i = idx[0] < 0 ? idx[0] + xs[ax] : idx[0];
      const pads = new Array(2 * xs.length).fill(0);
      pads[ax] = i; pads[xs.length + ax] = xs[ax] - i - 1;
      return [b.pad(b.unsqueeze(gy[0] as string, [ax]), pads)];
    },
  },
  Softmax: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0); const g = gy[0] as string;
      const axes = softmaxAxes(b, n);
      const s = b.reduceSum(b.mul(g, y), axes, 1);
      return [b.mul(y, b.op1('Sub', [g, s]))];
    },
  },
  LogSoftmax: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0); const g = gy[0] as string;
      const s = b.reduceSum(g, softmaxAxes(b, n), 1);
      return [b.op1('Sub', [g, b.mul(b.op1('Exp', [y]), s)])];
    },
  },
  Resize: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      if (xs.length !== 4) throw unsupported(n, 'Resize of a tensor that is not 4-D');
      if (int(n, 'antialias', 0)) throw unsupported(n, 'antialias');
      const rs = resizeOutput(b.g, n, xs, (t) => b.value(t));
      if (!rs || rs.scales[0] !== 1 || rs.scales[1] !== 1) throw unsupported(n, 'sizes/scales not constant or not spatial');
      const [h, w] = [xs[2], xs[3]]; const [H, W] = [rs.out[2], rs.out[3]];
      if (h < 0 || w < 0) throw unsupported(n, 'spatial size unknown');
      // Resize is separable and linear: Y = Rh X Rw^T, so dX = Rh^T dY Rw
      const rh = resizeMatrix(n, h, H, rs.scales[2], b.srcOpset);
      const rw = resizeMatrix(n, w, W, rs.scales[3], b.srcOpset);
      const t = b.op1('MatMul', [gy[0] as string, b.f32(Array.from(rw), [W, w])]);
      return [b.op1('MatMul', [b.f32(Array.from(transposeMatrix(rh, H, h)), [h, H]), t])];
    },
  },
  Erf: {
    diff: [0],
    // d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
    grad: (b, n, gy) => [b.mul(gOf(gy), b.mul(b.f32([2 / Math.sqrt(Math.PI)]), b.op1('Exp', [b.neg(b.mul(inp(n, 0), inp(n, 0)))])))],
  },
  Sqrt: { diff: [0], grad: (b, n, gy) => [b.op1('Div', [gOf(gy), b.mul(out(n, 0), b.f32([2]))])] },
  Exp: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), out(n, 0))] },
  Log: { diff: [0], grad: (b, n, gy) => [b.op1('Div', [gOf(gy), inp(n, 0)])] },
  Reciprocal: { diff: [0], grad: (b, n, gy) => [b.neg(b.mul(gOf(gy), b.mul(out(n, 0), out(n, 0))))] },
  Abs: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), b.op1('Sign', [inp(n, 0)]))] },
  Softplus: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), b.op1('Sigmoid', [inp(n, 0)]))] },
  Elu: {
    diff: [0],
    grad: (b, n, gy) => {
      const y = out(n, 0); const g = gOf(gy);
      const alpha = flt(n, 'alpha', 1);
      return [b.op1('Where', [b.op1('Greater', [y, b.f32([0])]), g, b.mul(g, b.op1('Add', [y, b.f32([alpha])]))])];
    },
  },
  PRelu: {
    diff: [0, 1],
    grad: (b, n, gy, need) => {
      const x = inp(n, 0); const g = gOf(gy);
      const pos = b.op1('Greater', [x, b.f32([0])]);
      return elementwise(b, n, g, need, (i) => (i === 0
        ? b.op1('Where', [pos, g, b.mul(g, inp(n, 1))])
        : b.op1('Where', [pos, b.f32([0]), b.mul(g, x)])));
    },
  },
  Pow: {
    diff: [0, 1],
    grad: (b, n, gy, need) => {
      const x = inp(n, 0); const e = inp(n, 1); const g = gOf(gy);
      return elementwise(b, n, g, need, (i) => {
        if (i === 0) {
          const ev = b.value(e);
          // d x^e / dx = e x^(e-1)
          const pm1 = ev && ev.length === 1 ? b.op1('Pow', [x, b.f32([ev[0] - 1])]) : b.op1('Pow', [x, b.op1('Sub', [e, b.f32([1])])]);
          return b.mul(g, b.mul(ev && ev.length === 1 ? b.f32([ev[0]]) : e, pm1));
        }
        return b.mul(g, b.mul(out(n, 0), b.op1('Log', [x])));
      });
    },
  },
  Max: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gOf(gy), need, (i) => b.where(b.op1('Equal', [inp(n, i), out(n, 0)]), gOf(gy))) },
  Min: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gOf(gy), need, (i) => b.where(b.op1('Equal', [inp(n, i), out(n, 0)]), gOf(gy))) },
  Where: {
    diff: [1, 2],
    grad: (b, n, gy, need) => {
      const g = gOf(gy); const c = inp(n, 0);
      return elementwise(b, n, g, need, (i) => (i === 1 ? b.where(c, g) : b.op1('Where', [c, b.f32([0]), g])));
    },
  },
  GlobalMaxPool: {
    diff: [0],
    grad: (b, n, gy, need, m) => {
      const xs = b.needShape(inp(n, 0), n);
      if (xs.slice(2).some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
      const pool: NodeProto = { ...n, opType: 'MaxPool', attribute: [attr('kernel_shape', xs.slice(2))] };
      return RULES.MaxPool.grad(b, pool, gy, need, m);
    },
  },
  LayerNormalization: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      let ax = int(n, 'axis', -1); if (ax < 0) ax += xs.length;
      const axes = Array.from({ length: xs.length - ax }, (_, i) => ax + i);
      return [normalizationGrad(b, n, gOf(gy), axes, inp(n, 1), flt(n, 'epsilon', 1e-5))];
    },
  },
  InstanceNormalization: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      const axes = Array.from({ length: xs.length - 2 }, (_, i) => i + 2);
      const scale = b.op1('Reshape', [inp(n, 1), b.i64([-1, ...axes.map(() => 1)])]);
      return [normalizationGrad(b, n, gOf(gy), axes, scale, flt(n, 'epsilon', 1e-5))];
    },
  },
};

RULES.Upsample = RULES.Resize;

/**
 * Normalization over `axes` (LayerNorm, InstanceNorm): with h = (x - mean) / sigma and gh = g * scale,
 * dx = (gh - mean(gh) - h * mean(gh * h)) / sigma.
 */
function normalizationGrad(b: Builder, n: NodeProto, g: string, axes: number[], scale: string, eps: number): string {
  const x = inp(n, 0);
  const xc = b.op1('Sub', [x, b.reduceMean(x, axes, 1)]);
  const inv = b.op1('Reciprocal', [b.op1('Sqrt', [b.op1('Add', [b.reduceMean(b.mul(xc, xc), axes, 1), b.f32([eps])])])]);
  const h = b.mul(xc, inv);
  const gh = b.mul(g, scale);
  const t = b.op1('Sub', [b.op1('Sub', [gh, b.reduceMean(gh, axes, 1)]), b.mul(h, b.reduceMean(b.mul(gh, h), axes, 1))]);
  return b.mul(t, inv);
}

/** Can two windows of this MaxPool (or GlobalMaxPool) share an input position? Unknown shapes: assume so. */
export function maxPoolOverlaps(n: NodeProto, xs: Shape | undefined): boolean {
  if (n.opType === 'GlobalMaxPool') return false;
  if (!xs || xs.slice(2).some((v) => v < 0)) return true;
  if ((ints(n, 'dilations') ?? []).some((v) => v !== 1)) return true;
  const nd = xs.length - 2;
  const geo = windowGeometry(n, xs.slice(2));
  // MaxUnpool also refuses ceil-mode windows that hang over the end: those take the scatter-add too
  const overhang = geo.kernel.some((k, i) => (geo.out[i] - 1) * geo.strides[i] + k - geo.pads[i] - geo.pads[nd + i] > xs[2 + i]);
  return overhang || geo.kernel.some((k, i) => geo.out[i] > 1 && k > geo.strides[i]);
}

function softmaxAxes(b: Builder, n: NodeProto): number[] {
  const r = b.needShape(out(n, 0), n).length;
  if (b.srcOpset >= 13) {
    let ax = int(n, 'axis', -1); if (ax < 0) ax += r;
    return [ax];
  }
  let ax = int(n, 'axis', 1); if (ax < 0) ax += r;
  return Array.from({ length: r - ax }, (_, i) => ax + i);
}

function reduceGrad(b: Builder, n: NodeProto, g: string, mean: boolean): string {
  const x = inp(n, 0);
  const xs = b.needShape(x, n);
  const r = xs.length;
  const axesIn = (n.opType === 'ReduceSum' && b.srcOpset >= 13) || b.srcOpset >= 18;
  let axes = axesIn ? (inp(n, 1) ? b.value(inp(n, 1)) : []) : ints(n, 'axes') ?? [];
  if (!axes) throw unsupported(n, 'axes are not constant');
  if (axes.length === 0) {
    if (int(n, 'noop_with_empty_axes', 0)) return g;
    axes = xs.map((_, i) => i);
  }
  axes = axes.map((a) => (a < 0 ? a + r : a)).sort((p, q) => p - q);
  let gg = g;
  if (!int(n, 'keepdims', 1)) gg = b.unsqueeze(gg, axes);
  if (mean) {
    const count = axes.reduce((a, i) => a * xs[i], 1);
    if (count <= 0) throw unsupported(n, 'reduced size unknown');
    gg = b.mul(gg, b.f32([1 / count]));
  }
  return b.op1('Expand', [gg, b.shapeOf(x)]);
}

// ------------------------------------------------------------------------------------ driver

interface PathInfo {
  /** tensors that carry a gradient from the sources */
  tracked: Set<string>;
  /** nodes to differentiate, in forward order */
  nodes: NodeProto[];
}

function diffInputs(rule: Rule | undefined, n: NodeProto): number[] {
  const len = (n.input ?? []).length;
  if (!rule) return Array.from({ length: len }, (_, i) => i);
  return rule.diff === 'all' ? Array.from({ length: len }, (_, i) => i) : rule.diff.filter((i) => i < len);
}

function gradOutputs(rule: Rule | undefined, n: NodeProto): number[] {
  const len = (n.output ?? []).length;
  if (!rule || rule.outs === 'all') return Array.from({ length: len }, (_, i) => i);
  return (rule.outs ?? [0]).filter((i) => i < len);
}

/** The nodes on a gradient path from `sources` to `logits`; unknown ops raise a GradcamError. */
export function gradientPath(g: GraphIndex, sources: string[], logits: string): PathInfo {
  const tracked = new Set(sources);
  const cand: NodeProto[] = [];
  for (const n of g.nodes) {
    const op = n.opType ?? '';
    if (NON_DIFFERENTIABLE.has(op)) continue;
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') {
      if ((n.input ?? []).some((i) => tracked.has(i))) for (const o of n.output ?? []) if (o) tracked.add(o);
      cand.push(n);
      continue;
    }
    const rule = RULES[op];
    if (op === 'Cast' && !isFloatType(int(n, 'to', DataType.FLOAT))) continue;
    const di = diffInputs(rule, n);
    if (!di.some((i) => tracked.has((n.input ?? [])[i]))) continue;
    for (const i of gradOutputs(rule, n)) { const o = out(n, i); if (o) tracked.add(o); }
    cand.push(n);
  }
  const needed = new Set([logits]);
  const nodes: NodeProto[] = [];
  for (let k = cand.length - 1; k >= 0; k--) {
    const n = cand[k];
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    const rule = (n.domain ?? '') === '' || n.domain === 'ai.onnx' ? RULES[n.opType ?? ''] : undefined;
    if (!rule) {
      const dom = n.domain ? `${n.domain}.` : '';
      throw new GradcamError(
        `Cannot differentiate ${dom}${n.opType} node '${n.name ?? '(unnamed)'}' (output ${out(n, 0)}): no backward rule for op ${dom}${n.opType}. ` +
        `Choose a target layer after it, or a method that does not need the input gradient.`, 'EUNSUPPORTED');
    }
    const di = diffInputs(rule, n);
    (n.input ?? []).forEach((x, i) => {
      if (!x || !tracked.has(x)) return;
      if (di.includes(i)) needed.add(x);
      // e.g. a Conv weight computed from the input: its gradient would be silently dropped
      else throw unsupported(n, `input ${i} (${x}) depends on ${sources.join(', ')} but has no backward rule`);
    });
    nodes.push(n);
  }
  nodes.reverse();
  for (const s of sources) {
    if (!needed.has(s)) throw new GradcamError(`The logits ${logits} do not depend on ${s} through differentiable ops`, 'EUNSUPPORTED');
  }
  return { tracked, nodes };
}

function backprop(b: Builder, path: PathInfo, seed: string, logits: string, mode: PassMode): Map<string, string[]> {
  const grads = new Map<string, string[]>([[logits, [seed]]]);
  for (let k = path.nodes.length - 1; k >= 0; k--) {
    const n = path.nodes[k];
    const rule = RULES[n.opType ?? ''];
    const gy: Grad[] = (n.output ?? []).map((o) => accumulate(b, grads.get(o)));
    if (gy.every((v) => v === undefined)) continue;
    if (!rule.outs && gy[0] === undefined) continue;
    const di = diffInputs(rule, n);
    const need = (n.input ?? []).map((x, i) => di.includes(i) && path.tracked.has(x));
    const gx = rule.grad(b, n, gy, need, mode);
    (n.input ?? []).forEach((x, i) => {
      const gi = gx[i];
      if (!need[i] || !gi) return;
      let list = grads.get(x);
      if (!list) grads.set(x, (list = []));
      list.push(gi);
    });
  }
  return grads;
}

function accumulate(b: Builder, list: string[] | undefined): string | undefined {
  if (!list || list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  const sum = b.op1('Sum', list.slice());
  list.length = 0;
  list.push(sum);
  return sum;
}

/**
 * The score tensor: `name`, or the model's first output, or, when that output is a Softmax of the
 * last axis, its input (the paper's score is the pre-softmax logit).
 */
export function logitsOf(g: GraphIndex, name?: string): string {
  if (name !== undefined) {
    if (!g.producer.has(name)) throw new GradcamError(`ONNX model has no tensor ${name} produced by a node`, 'EBADMODEL');
    return name;
  }
  const l = g.outputs[0];
  const p = l ? g.producer.get(l) : undefined;
  if (!l || !p) throw new GradcamError('ONNX model has no output produced by a node', 'EBADMODEL');
  if (p.opType === 'Softmax') {
    const axis = int(p, 'axis', g.opset >= 13 ? -1 : 1);
    if (axis === -1 || axis === 1) return inp(p, 0);
  }
  return l;
}

/**
 * The model's nodes rewritten for a newer opset (raised to 16 for the scatter-add, to 13 from opset 9): the ops whose
 * arguments moved from attributes to inputs at opset 13 (Squeeze, Unsqueeze, ReduceSum, Split),
 * and Softmax-family axis defaults. Other ops of the rule set mean the same at 16.
 */
function upgradeNodes(g: GraphIndex, inf: InferredGraph, to: number, b: Builder): NodeProto[] {
  if (g.opset >= 13 || to < 13) return g.nodes;
  const withoutAttr = (n: NodeProto, ...names: string[]) => (n.attribute ?? []).filter((a) => !names.includes(a.name as string));
  return g.nodes.map((n) => {
    if (g.opset < 11) {
      // opset 10: arguments that became inputs at 11, Upsample/Resize-10 indexing
      switch (n.opType) {
        case 'Clip': {
          const mn = getAttr(n, 'min'); const mx = getAttr(n, 'max');
          return {
            ...n, attribute: withoutAttr(n, 'min', 'max'),
            input: [inp(n, 0), typeof mn === 'number' ? b.f32([mn]) : '', typeof mx === 'number' ? b.f32([mx]) : ''],
          };
        }
        case 'Pad':
          return {
            ...n, attribute: withoutAttr(n, 'pads', 'value'),
            input: [inp(n, 0), b.i64(ints(n, 'pads') ?? []), b.f32([flt(n, 'value', 0)])],
          };
        case 'Dropout':
          return { ...n, attribute: withoutAttr(n, 'ratio') };
        case 'Slice': {
          // opset 9: starts/ends/axes as attributes
          if (g.opset >= 10) break;
          const axes = ints(n, 'axes');
          return {
            ...n, attribute: [],
            input: [inp(n, 0), b.i64(ints(n, 'starts') ?? []), b.i64(ints(n, 'ends') ?? []), ...(axes ? [b.i64(axes)] : [])],
          };
        }
        case 'Upsample': case 'Resize': {
          const mode = str(n, 'mode', 'nearest');
          const attrs = [attr('mode', mode), attr('coordinate_transformation_mode', 'asymmetric')];
          if (mode === 'nearest') attrs.push(attr('nearest_mode', 'floor'));
          return { ...n, opType: 'Resize', input: [inp(n, 0), '', inp(n, 1)], attribute: attrs };
        }
        default:
          break;
      }
    }
    switch (n.opType) {
      case 'Squeeze': case 'Unsqueeze': case 'ReduceSum': {
        const axes = ints(n, 'axes');
        if (!axes) return n;
        return { ...n, input: [inp(n, 0), b.i64(axes)], attribute: withoutAttr(n, 'axes') };
      }
      case 'Split': {
        const split = ints(n, 'split');
        if (!split) return n;
        return { ...n, input: [inp(n, 0), b.i64(split)], attribute: withoutAttr(n, 'split') };
      }
      case 'Softmax': case 'LogSoftmax': case 'Hardmax': {
        const r = inf.shapes.get(inp(n, 0))?.length;
        let ax = int(n, 'axis', 1);
        if (r === undefined) throw unsupported(n, `rank unknown while raising the opset to ${to}`);
        if (ax < 0) ax += r;
        // before 13 the op normalized over all axes from `axis` on: the same only for the last axis
        if (ax !== r - 1) throw unsupported(n, `axis ${ax} of a rank-${r} input while raising the opset to ${to} for MaxPool`);
        return { ...n, attribute: [...withoutAttr(n, 'axis'), attr('axis', ax)] };
      }
      default:
        return n;
    }
  });
}

/** Check, without building anything, that gradients can flow to `layers` (and the input). */
export function checkDifferentiable(model: ModelProto | GraphIndex, layers: string[], inputGrad: boolean, logits?: string): void {
  const g = model instanceof GraphIndex ? model : new GraphIndex(model);
  const l = logitsOf(g, logits);
  if (layers.length) gradientPath(g, layers, l);
  if (inputGrad) gradientPath(g, [g.input], l);
}

function valueInfo(name: string, elemType: number, dims?: Shape): ValueInfoProto {
  const vi: ValueInfoProto = { name, type: { tensorType: { elemType } } };
  if (dims) {
    vi.type!.tensorType!.shape = { dim: dims.map((d, i) => (d >= 0 ? { dimValue: d } : { dimParam: i === 0 ? 'N' : `${name}_d${i}` })) };
  }
  return vi;
}

/** Build the forward+backward model. Throws a GradcamError naming the op for an unsupported node. */
export function buildGradientModel(model: ModelProto, opts: BackwardOptions): GradientModel {
  const g = new GraphIndex(model);
  if (g.opset < 9) throw new GradcamError(`ONNX opset ${g.opset} is not supported (9 or newer is)`, 'EUNSUPPORTED');
  const logits = logitsOf(g, opts.logits);
  const inputShape = opts.inputShape ?? g.inputShape();
  const inf = inferShapes(g, inputShape);
  for (const l of opts.layers) {
    if (!g.producer.has(l)) throw new GradcamError(`ONNX model has no tensor ${l} produced by a node`, 'EBADLAYER');
  }
  const plainPath = opts.layers.length ? gradientPath(g, opts.layers, logits) : undefined;
  const fullPath = opts.inputGrad ? gradientPath(g, [g.input], logits) : undefined;
  // MaxPool's scatter-add (ScatterElements reduction='add') needs opset 16
  const needsScatter = [plainPath, fullPath].some((p) => p?.nodes.some((n) => n.opType === 'MaxPool' && maxPoolOverlaps(n, inf.shapes.get(inp(n, 0)))));
  // the generated nodes use opset-10+ forms (Slice with inputs): older models are raised to 13
  const opset = needsScatter && g.opset < 16 ? 16 : g.opset < 10 ? 13 : g.opset;
  const b = new Builder(g, inf, opset);
  if (opts.stridedConv) b.stridedConv = opts.stridedConv;

  // seed = sign * onehot(class), class = argmax(logits) where gradcam_class is -1
  const argmax = b.op1('ArgMax', [logits], { axis: 1, keepdims: 0 });
  const cls = b.op1('Where', [b.op1('Equal', [CLASS_INPUT, b.i64([-1], [])]), argmax, CLASS_INPUT]);
  let range: string;
  if (b.opset >= 11) {
    const k = b.op1('Gather', [b.shapeOf(logits), b.i64([1], [])], { axis: 0 });
    range = b.op1('Range', [b.i64([0], []), k, b.i64([1], [])]);
  } else {
    const ls = inf.shapes.get(logits);
    if (!ls || ls.length !== 2 || ls[1] <= 0) throw new GradcamError(`The number of classes of ${logits} is not known statically (opset ${g.opset})`, 'EUNSUPPORTED');
    range = b.i64(Array.from({ length: ls[1] }, (_, i) => i));
  }
  const onehot = b.op1('Cast', [b.op1('Equal', [b.op1('Reshape', [cls, b.i64([-1, 1])]), range])], { to: DataType.FLOAT });
  const seed = b.mul(onehot, SIGN_INPUT);

  const outputs: ValueInfoProto[] = [];
  const gradOutputs: string[] = [];
  const finalNodes: NodeProto[] = [{ opType: 'Identity', input: [cls], output: [CLASSES_OUTPUT], name: CLASSES_OUTPUT }];
  if (plainPath) {
    const grads = backprop(b, plainPath, seed, logits, { guided: false, guidedRelu6: false, unguided: new Set() });
    opts.layers.forEach((l, i) => {
      const gl = accumulate(b, grads.get(l));
      if (!gl) throw new GradcamError(`No gradient reaches ${l}`, 'EUNSUPPORTED');
      const name = `gradcam_grad_${i}`;
      finalNodes.push({ opType: 'Identity', input: [gl], output: [name], name });
      gradOutputs.push(name);
    });
  }
  let inputGradOutput: string | undefined;
  if (fullPath) {
    const guided = opts.guided ?? true;
    const grads = backprop(b, fullPath, seed, logits, {
      guided, guidedRelu6: !!opts.guidedRelu6, unguided: new Set(opts.unguidedNodes ?? []),
    });
    const gi = accumulate(b, grads.get(g.input));
    if (!gi) throw new GradcamError('No gradient reaches the model input', 'EUNSUPPORTED');
    inputGradOutput = INPUT_GRAD_OUTPUT;
    finalNodes.push({ opType: 'Identity', input: [gi], output: [INPUT_GRAD_OUTPUT], name: INPUT_GRAD_OUTPUT });
  }

  // assemble the new model (shallow copies: the caller's model is not modified)
  const graph = { ...g.graph };
  const initNames = new Set(g.initializers.keys());
  const forward = opset !== g.opset ? upgradeNodes(g, inf, opset, b) : g.nodes;
  graph.node = [...forward, ...b.nodes, ...finalNodes];
  graph.initializer = [...(g.graph.initializer ?? []), ...b.inits];
  // initializers listed as inputs (IR < 4 exports) would not be constant-folded
  graph.input = [
    ...(g.graph.input ?? []).filter((v) => !initNames.has(v.name as string)),
    valueInfo(CLASS_INPUT, DataType.INT64, [-1]),
    valueInfo(SIGN_INPUT, DataType.FLOAT, []),
  ];
  const logitsVi = (g.graph.output ?? []).find((v) => v.name === logits) ?? valueInfo(logits, DataType.FLOAT);
  graph.valueInfo = (g.graph.valueInfo ?? []).filter((v) => v.name !== logits);
  outputs.push(logitsVi, valueInfo(CLASSES_OUTPUT, DataType.INT64, [-1]));
  // new outputs declare their type only: ORT infers their shapes (a declared one could only conflict)
  for (const l of opts.layers) outputs.push(valueInfo(l, DataType.FLOAT));
  for (const name of gradOutputs) outputs.push(valueInfo(name, DataType.FLOAT));
  if (inputGradOutput) outputs.push(valueInfo(inputGradOutput, DataType.FLOAT));
  graph.output = outputs;
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !opts.layers.includes(v.name as string));

  let opsetImport = model.opsetImport ?? [];
  let irVersion = model.irVersion ?? 7;
  if (opset !== g.opset) {
    opsetImport = opsetImport.map((o) => (!o.domain || o.domain === 'ai.onnx' ? { ...o, version: opset } : o));
    irVersion = Math.max(irVersion, 8);
  }
  const newModel: ModelProto = { ...model, irVersion, opsetImport, graph };
  return {
    model: newModel, input: g.input, logits, classInput: CLASS_INPUT, signInput: SIGN_INPUT,
    classesOutput: CLASSES_OUTPUT, layers: opts.layers.slice(), gradOutputs, inputGradOutput,
    layerShapes: opts.layers.map((l) => inf.shapes.get(l) ?? []), backwardNodes: b.nodes.length, opset,
  };
}
