/**
 * A read-only index over an ONNX graph: producers, consumers, constant values, and static shape
 * inference for a given input shape. Shapes use -1 for a dimension that is not known statically
 * (the batch dimension, always); values of small integer tensors (Shape -> Gather -> Concat ->
 * Reshape patterns, Pad/Slice arguments, Clip bounds) are propagated so that backward rules can
 * read them as constants. NaN in a propagated value means "not known statically".
 */
import { GradcamError } from '../errors';
import {
  DataType, GraphProto, ModelProto, NodeProto, TensorProto,
  getAttr, opsetVersion, tensorToNumbers, valueInfoShape,
} from './proto';

export type Shape = number[];

/** ops whose outputs carry no gradient (integer, boolean or piecewise-constant results) */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'ArgMax', 'ArgMin', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'Not', 'And', 'Or', 'Xor', 'NonZero', 'ConstantOfShape', 'Range', 'Constant', 'Floor', 'Ceil',
  'Round', 'Sign', 'IsNaN', 'IsInf', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike', 'OneHot',
  'TopK', 'NonMaxSuppression',
]);

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, 16 /* bfloat16 */]);

/** Is a Cast to this ONNX type a float-to-float cast (differentiable)? */
export function isFloatType(t: number): boolean {
  return FLOAT_TYPES.has(t);
}

const MAX_PROPAGATED = 4096;

export class GraphIndex {
  readonly graph: GraphProto;
  readonly nodes: NodeProto[];
  readonly opset: number;
  /** tensor name -> node producing it */
  readonly producer = new Map<string, NodeProto>();
  /** tensor name -> nodes consuming it */
  readonly consumers = new Map<string, NodeProto[]>();
  /** initializer name -> tensor */
  readonly initializers = new Map<string, TensorProto>();
  /** the data input (first graph input that is not an initializer) */
  readonly input: string;
  readonly outputs: string[];

  constructor(readonly model: ModelProto) {
    this.graph = model.graph as GraphProto;
    this.nodes = this.graph.node ?? [];
    this.opset = opsetVersion(model);
    for (const t of this.graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const n of this.nodes) {
      for (const o of n.output ?? []) if (o) this.producer.set(o, n);
      for (const i of n.input ?? []) {
        if (!i) continue;
        let list = this.consumers.get(i);
        if (!list) this.consumers.set(i, (list = []));
        list.push(n);
      }
    }
    const inputs = (this.graph.input ?? []).filter((v) => v.name && !this.initializers.has(v.name));
    if (inputs.length === 0) throw new GradcamError('ONNX model has no data input', 'EBADMODEL');
    this.input = inputs[0].name as string;
    this.outputs = (this.graph.output ?? []).map((v) => v.name as string);
  }

  /** The declared shape of the data input (-1 for symbolic dims). */
  inputShape(): Shape {
    const v = (this.graph.input ?? []).find((x) => x.name === this.input);
    const s = v ? valueInfoShape(v) : undefined;
    if (!s) throw new GradcamError(`ONNX input ${this.input} has no declared shape`, 'EBADMODEL');
    return s;
  }

  /** Value of a constant tensor (initializer or Constant node output), as numbers. */
  constant(name: string): { dims: number[]; values: number[] } | undefined {
    const t = this.initializers.get(name);
    if (t) return { dims: (t.dims ?? []).map(Number), values: tensorToNumbers(t) };
    const p = this.producer.get(name);
    if (p && p.opType === 'Constant') return constantNodeValue(p);
    return undefined;
  }

  /** Names of every tensor that depends (through any input) on one of `sources`. */
  descendants(sources: Iterable<string>): Set<string> {
    const seen = new Set(sources);
    for (const n of this.nodes) {
      if ((n.input ?? []).some((i) => i && seen.has(i))) for (const o of n.output ?? []) if (o) seen.add(o);
    }
    return seen;
  }

  /** Names of every tensor that `targets` depend on (including themselves). */
  ancestors(targets: Iterable<string>): Set<string> {
    const seen = new Set(targets);
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k];
      if ((n.output ?? []).some((o) => o && seen.has(o))) for (const i of n.input ?? []) if (i) seen.add(i);
    }
    return seen;
  }
}

export function constantNodeValue(n: NodeProto): { dims: number[]; values: number[] } | undefined {
  const t = getAttr(n, 'value');
  if (t && typeof t === 'object' && !Array.isArray(t)) {
    const tp = t as TensorProto;
    return { dims: (tp.dims ?? []).map(Number), values: tensorToNumbers(tp) };
  }
  for (const k of ['value_float', 'value_int']) {
    const v = getAttr(n, k);
    if (typeof v === 'number') return { dims: [], values: [v] };
  }
  for (const k of ['value_floats', 'value_ints']) {
    const v = getAttr(n, k);
    if (Array.isArray(v)) return { dims: [v.length], values: v };
  }
  return undefined;
}

function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** Broadcast shapes numpy-style; -1 is "unknown", 1 broadcasts. */
export function broadcastShapes(...shapes: Shape[]): Shape {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - r + i] ?? 1;
      if (v === 1) continue;
      if (v === -1) { if (d === 1) d = -1; continue; }
      d = v;
    }
    out.push(d);
  }
  return out;
}

function intsAttr(n: NodeProto, name: string): number[] | undefined {
  const v = getAttr(n, name);
  return Array.isArray(v) ? v.map(Number) : undefined;
}
function intAttr(n: NodeProto, name: string, dflt: number): number {
  const v = getAttr(n, name);
  return typeof v === 'number' ? v : dflt;
}
function strAttr(n: NodeProto, name: string, dflt: string): string {
  const v = getAttr(n, name);
  return typeof v === 'string' ? v : dflt;
}

/** Geometry of a Conv / pool node with explicit pads for the given spatial input size. */
export interface WindowGeometry {
  kernel: number[]; strides: number[]; dilations: number[];
  /** [b1, b2, ..., e1, e2, ...] */
  pads: number[];
  ceil: boolean;
  /** output spatial size */
  out: number[];
}

export function windowGeometry(n: NodeProto, spatialIn: number[], kernelFromWeight?: number[]): WindowGeometry {
  const nd = spatialIn.length;
  const kernel = intsAttr(n, 'kernel_shape') ?? kernelFromWeight;
  if (!kernel) throw new GradcamError(`${n.opType} node ${n.name}: kernel shape unknown`, 'EBADMODEL');
  const strides = intsAttr(n, 'strides') ?? new Array(nd).fill(1);
  const dilations = intsAttr(n, 'dilations') ?? new Array(nd).fill(1);
  let pads = intsAttr(n, 'pads') ?? new Array(2 * nd).fill(0);
  const ceil = intAttr(n, 'ceil_mode', 0) === 1;
  const autoPad = strAttr(n, 'auto_pad', 'NOTSET');
  const ek = kernel.map((k, i) => dilations[i] * (k - 1) + 1);
  const out: number[] = [];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * nd).fill(0);
    for (let i = 0; i < nd; i++) {
      const o = Math.ceil(spatialIn[i] / strides[i]);
      const total = Math.max(0, (o - 1) * strides[i] + ek[i] - spatialIn[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[nd + i] = total - pads[i];
      out.push(o);
    }
    return { kernel, strides, dilations, pads, ceil, out };
  }
  if (autoPad === 'VALID') pads = new Array(2 * nd).fill(0);
  for (let i = 0; i < nd; i++) {
    if (spatialIn[i] < 0) { out.push(-1); continue; }
    const span = spatialIn[i] + pads[i] + pads[nd + i] - ek[i];
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // a ceil-mode window must start inside the input or the left padding
    if (ceil && (o - 1) * strides[i] >= spatialIn[i] + pads[i]) o--;
    out.push(o);
  }
  return { kernel, strides, dilations, pads, ceil, out };
}

export interface InferredGraph {
  shapes: Map<string, Shape>;
  /** propagated values of small tensors (NaN = unknown element) */
  values: Map<string, number[]>;
  /** element type of each tensor where known (ONNX DataType) */
  types: Map<string, number>;
}

function normAxis(a: number, r: number): number {
  return a < 0 ? a + r : a;
}

/**
 * Static shapes of every tensor for a data input of `inputShape` (use -1 for the batch).
 * Ops without a shape rule leave their outputs unknown (absent from the map).
 */
export function inferShapes(g: GraphIndex, inputShape: Shape): InferredGraph {
  const shapes = new Map<string, Shape>();
  const values = new Map<string, number[]>();
  const types = new Map<string, number>();
  shapes.set(g.input, inputShape);
  const inVi = (g.graph.input ?? []).find((v) => v.name === g.input);
  types.set(g.input, inVi?.type?.tensorType?.elemType ?? DataType.FLOAT);
  for (const [name, t] of g.initializers) {
    const dims = (t.dims ?? []).map(Number);
    shapes.set(name, dims);
    types.set(name, t.dataType ?? DataType.FLOAT);
    if (prod(dims) <= MAX_PROPAGATED) values.set(name, tensorToNumbers(t));
  }
  const S = (x: string | undefined): Shape | undefined => (x ? shapes.get(x) : undefined);
  const V = (x: string | undefined): number[] | undefined => (x ? values.get(x) : undefined);
  const known = (v: number[] | undefined): v is number[] => !!v && v.every((x) => !Number.isNaN(x));

  for (const n of g.nodes) {
    const op = n.opType ?? '';
    const ins = n.input ?? [];
    const outs = n.output ?? [];
    const x = S(ins[0]);
    const set = (i: number, s: Shape | undefined, v?: number[], t?: number) => {
      const o = outs[i];
      if (!o) return;
      if (s) shapes.set(o, s);
      if (v && v.length <= MAX_PROPAGATED) values.set(o, v);
      const ty = t ?? (ins[0] ? types.get(ins[0]) : undefined);
      if (ty !== undefined) types.set(o, ty);
    };
    try {
      switch (op) {
        case 'Constant': {
          const c = constantNodeValue(n);
          const tv = getAttr(n, 'value') as TensorProto | undefined;
          const ty = tv && typeof tv === 'object' && !Array.isArray(tv) ? tv.dataType ?? DataType.FLOAT
            : getAttr(n, 'value_int') !== undefined || getAttr(n, 'value_ints') !== undefined ? DataType.INT64 : DataType.FLOAT;
          if (c) set(0, c.dims, c.values, ty);
          break;
        }
        case 'Relu': case 'Clip': case 'Sigmoid': case 'LeakyRelu': case 'HardSigmoid': case 'HardSwish':
        case 'Identity': case 'Softmax': case 'LogSoftmax': case 'Tanh': case 'Neg': case 'Exp': case 'Log':
        case 'Sqrt': case 'Abs': case 'Erf': case 'Elu': case 'Selu': case 'Softplus': case 'Reciprocal':
        case 'LRN': case 'InstanceNormalization': case 'LayerNormalization': case 'Floor': case 'Ceil':
        case 'Round': case 'Sign': case 'Not': case 'Gelu': case 'Mish': case 'Celu': case 'PRelu':
        case 'Cos': case 'Sin': case 'Tan': case 'Acos': case 'Asin': case 'Atan': case 'Sinh': case 'Cosh':
        case 'Asinh': case 'Acosh': case 'Atanh': case 'Shrink': case 'ThresholdedRelu': case 'Hardmax':
        case 'IsNaN': case 'IsInf':
        case 'BatchNormalization': case 'Dropout':
          set(0, x, op === 'Identity' ? V(ins[0]) : op === 'Neg' && V(ins[0]) ? V(ins[0])!.map((v) => -v) : undefined);
          if (op === 'Dropout' && outs[1]) set(1, x, undefined, DataType.BOOL);
          break;
        case 'Cast': {
          const to = intAttr(n, 'to', DataType.FLOAT);
          set(0, x, V(ins[0]), to);
          break;
        }
        case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Max': case 'Min': case 'Sum':
        case 'Mean': case 'Equal': case 'Greater': case 'Less': case 'GreaterOrEqual': case 'LessOrEqual':
        case 'And': case 'Or': case 'Where': {
          const ss = ins.map(S);
          const shp = ss.every((s) => s) ? broadcastShapes(...(ss as Shape[])) : undefined;
          let val: number[] | undefined;
          const a = V(ins[0]); const b = V(ins[1]);
          if (a && b && ['Add', 'Sub', 'Mul', 'Div'].includes(op) && (a.length === b.length || a.length === 1 || b.length === 1)) {
            const len = Math.max(a.length, b.length);
            const intDiv = types.get(ins[0]) === DataType.INT64 || types.get(ins[0]) === DataType.INT32;
            val = Array.from({ length: len }, (_, i) => {
              const p = a[a.length === 1 ? 0 : i]; const q = b[b.length === 1 ? 0 : i];
              switch (op) {
                case 'Add': return p + q;
                case 'Sub': return p - q;
                case 'Mul': return p * q;
                default: return intDiv ? Math.trunc(p / q) : p / q;
              }
            });
          }
          const boolOut = ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or'].includes(op);
          set(0, shp, val, boolOut ? DataType.BOOL : op === 'Where' ? types.get(ins[1]) : undefined);
          break;
        }
        case 'Conv': case 'MaxPool': case 'AveragePool': case 'LpPool': {
          if (!x) break;
          const w = S(ins[1]);
          const geo = windowGeometry(n, x.slice(2), op === 'Conv' && w ? w.slice(2) : undefined);
          const c = op === 'Conv' ? (w ? w[0] : -1) : x[1];
          set(0, [x[0], c, ...geo.out]);
          if (op === 'MaxPool' && outs[1]) set(1, [x[0], c, ...geo.out], undefined, DataType.INT64);
          break;
        }
        case 'ConvTranspose': {
          const w = S(ins[1]);
          if (!x || !w) break;
          const nd = x.length - 2;
          const group = intAttr(n, 'group', 1);
          const k = intsAttr(n, 'kernel_shape') ?? w.slice(2);
          const s = intsAttr(n, 'strides') ?? new Array(nd).fill(1);
          const d = intsAttr(n, 'dilations') ?? new Array(nd).fill(1);
          const p = intsAttr(n, 'pads') ?? new Array(2 * nd).fill(0);
          const op2 = intsAttr(n, 'output_padding') ?? new Array(nd).fill(0);
          const os = intsAttr(n, 'output_shape');
          const out = os ? os.slice(-nd) : x.slice(2).map((v, i) => (v < 0 ? -1 : s[i] * (v - 1) + op2[i] + d[i] * (k[i] - 1) + 1 - p[i] - p[nd + i]));
          set(0, [x[0], w[1] * group, ...out]);
          break;
        }
        case 'GlobalAveragePool': case 'GlobalMaxPool':
          if (x) set(0, [x[0], x[1], ...x.slice(2).map(() => 1)]);
          break;
        case 'Flatten': {
          if (!x) break;
          const ax = normAxis(intAttr(n, 'axis', 1), x.length);
          const p1 = x.slice(0, ax); const p2 = x.slice(ax);
          const f = (a: number[]) => (a.some((v) => v < 0) ? -1 : prod(a));
          set(0, [f(p1), f(p2)]);
          break;
        }
        case 'Reshape': {
          const t = V(ins[1]);
          if (!x || !t) break;
          const allowZero = intAttr(n, 'allowzero', 0) === 1;
          const out = t.map((v, i) => (v === 0 && !allowZero ? x[i] ?? -1 : v));
          // the batch: unknown at position 0 when the input's batch is unknown
          const batchUnknown = x[0] === -1;
          const inRest = batchUnknown ? x.slice(1) : x;
          const inKnown = inRest.every((v) => v >= 0);
          const res = out.map((v) => (Number.isNaN(v) ? -1 : v));
          const inferIdx = out.map((v, i) => (v === -1 ? i : -2)).filter((i) => i >= 0);
          if (inKnown && inferIdx.length <= 1) {
            const skip0 = batchUnknown && (Number.isNaN(out[0]) || out[0] === -1 || out[0] === x[0]);
            const others = res.filter((v, i) => v >= 0 && !(skip0 && i === 0) && !inferIdx.includes(i));
            const rest = inferIdx.filter((i) => !(skip0 && i === 0));
            if (rest.length === 1 && (!batchUnknown || skip0)) res[rest[0]] = prod(inRest) / prod(others);
            if (skip0) res[0] = -1;
          }
          set(0, res, V(ins[0]));
          break;
        }
        case 'Gemm': {
          const a = S(ins[0]); const b = S(ins[1]);
          if (!a || !b) break;
          const m = intAttr(n, 'transA', 0) ? a[1] : a[0];
          const nn = intAttr(n, 'transB', 0) ? b[0] : b[1];
          set(0, [m, nn]);
          break;
        }
        case 'MatMul': {
          const a = S(ins[0]); const b = S(ins[1]);
          if (!a || !b || a.length < 2 || b.length < 2) break;
          const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
          set(0, [...batch, a[a.length - 2], b[b.length - 1]]);
          break;
        }
        case 'Concat': {
          const ss = ins.map(S);
          if (!ss.every((s) => s)) break;
          const r = (ss[0] as Shape).length;
          const ax = normAxis(intAttr(n, 'axis', 0), r);
          const out = (ss[0] as Shape).slice();
          out[ax] = ss.some((s) => (s as Shape)[ax] < 0) ? -1 : ss.reduce((acc, s) => acc + (s as Shape)[ax], 0);
          const vs = ins.map(V);
          let val: number[] | undefined;
          if (vs.every((v) => v) && out.every((d) => d >= 0)) {
            // concatenate along ax: blocks of (dim_ax * inner) per outer index
            const inner = out.slice(ax + 1).reduce((a, b) => a * b, 1);
            const outer = out.slice(0, ax).reduce((a, b) => a * b, 1);
            val = [];
            for (let o = 0; o < outer; o++) {
              ss.forEach((sh, i) => {
                const blk = (sh as Shape)[ax] * inner;
                for (let j = 0; j < blk; j++) val!.push((vs[i] as number[])[o * blk + j]);
              });
            }
          }
          set(0, out, val);
          break;
        }
        case 'Transpose': {
          if (!x) break;
          const perm = intsAttr(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
          const out = perm.map((p) => x[p]);
          const dv = V(ins[0]);
          let val: number[] | undefined;
          if (dv && x.every((d) => d >= 0)) {
            // out[i_0..i_r] = x[j] with j[perm[k]] = i_k
            const inv = new Array(perm.length);
            perm.forEach((p, k) => { inv[p] = k; });
            val = gatherStrided(dv, x, out, (_o, ax, idx) => idx[inv[ax]]);
          }
          set(0, out, val);
          break;
        }
        case 'Squeeze': case 'Unsqueeze': {
          if (!x) break;
          const axes = g.opset >= 13 ? (ins[1] ? V(ins[1]) : undefined) : intsAttr(n, 'axes');
          if (op === 'Squeeze') {
            const r = x.length;
            const ax = axes ? axes.map((a) => normAxis(a, r)) : x.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0);
            set(0, x.filter((_, i) => !ax.includes(i)), V(ins[0]));
          } else {
            if (!axes) break;
            const r = x.length + axes.length;
            const ax = axes.map((a) => normAxis(a, r));
            const out: number[] = [];
            let j = 0;
            for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x[j++]);
            set(0, out, V(ins[0]));
          }
          break;
        }
        case 'Pad': {
          if (!x) break;
          const pads = g.opset >= 11 ? V(ins[1]) : intsAttr(n, 'pads');
          if (!known(pads)) break;
          const r = x.length;
          set(0, x.map((v, i) => (v < 0 ? -1 : v + pads[i] + pads[r + i])));
          break;
        }
        case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd':
        case 'ReduceL2': case 'ReduceL1': case 'ReduceLogSumExp': case 'ReduceSumSquare': {
          if (!x) break;
          const axesIn = (op === 'ReduceSum' && g.opset >= 13) || g.opset >= 18;
          let axes = axesIn ? (ins[1] ? V(ins[1]) : undefined) : intsAttr(n, 'axes');
          if (axesIn && ins[1] && !axes) break;
          const keep = intAttr(n, 'keepdims', 1) === 1;
          const r = x.length;
          if (!axes || axes.length === 0) axes = intAttr(n, 'noop_with_empty_axes', 0) ? [] : x.map((_, i) => i);
          const ax = axes.map((a) => normAxis(a, r));
          let val: number[] | undefined;
          const xv = V(ins[0]);
          if (op === 'ReduceProd' && xv && r === 1 && known(xv)) val = [prod(xv)];
          set(0, keep ? x.map((v, i) => (ax.includes(i) ? 1 : v)) : x.filter((_, i) => !ax.includes(i)), val);
          break;
        }
        case 'ArgMax': case 'ArgMin': {
          if (!x) break;
          const ax = normAxis(intAttr(n, 'axis', 0), x.length);
          const keep = intAttr(n, 'keepdims', 1) === 1;
          set(0, keep ? x.map((v, i) => (i === ax ? 1 : v)) : x.filter((_, i) => i !== ax), undefined, DataType.INT64);
          break;
        }
        case 'Shape': {
          if (!x) break;
          const r = x.length;
          let st = normAxis(intAttr(n, 'start', 0), r); let en = getAttr(n, 'end') === undefined ? r : normAxis(intAttr(n, 'end', r), r);
          st = Math.max(0, Math.min(r, st)); en = Math.max(0, Math.min(r, en));
          const v = x.slice(st, en).map((d) => (d < 0 ? NaN : d));
          set(0, [v.length], v, DataType.INT64);
          break;
        }
        case 'Size':
          if (x) set(0, [], [x.some((v) => v < 0) ? NaN : prod(x)], DataType.INT64);
          break;
        case 'Gather': {
          const idx = S(ins[1]);
          if (!x || !idx) break;
          const ax = normAxis(intAttr(n, 'axis', 0), x.length);
          const out = [...x.slice(0, ax), ...idx, ...x.slice(ax + 1)];
          const dv = V(ins[0]); const iv = V(ins[1]);
          let val: number[] | undefined;
          if (dv && iv && x.length === 1) val = iv.map((i) => dv[i < 0 ? i + dv.length : i]);
          set(0, out, val);
          break;
        }
        case 'Slice': {
          if (!x) break;
          const sl = sliceParams(g, n, x, V);
          if (!sl) break;
          const out = x.slice();
          for (const [ax, b, e, st] of sl) out[ax] = x[ax] < 0 ? -1 : Math.max(0, Math.ceil((e - b) / st));
          const dv = V(ins[0]);
          let val: number[] | undefined;
          if (dv && x.every((d) => d >= 0)) {
            // strided gather over the small value tensor
            const begin = x.map(() => 0); const step = x.map(() => 1);
            for (const [ax, b, , st] of sl) { begin[ax] = b; step[ax] = st; }
            val = gatherStrided(dv, x, out, (o, ax) => begin[ax] + o * step[ax]);
          }
          set(0, out, val);
          break;
        }
        case 'ConstantOfShape': {
          const sv = V(ins[0]);
          if (!known(sv)) break;
          const tv = getAttr(n, 'value') as TensorProto | undefined;
          const fill = tv && typeof tv === 'object' ? tensorToNumbers(tv)[0] ?? 0 : 0;
          const ty = tv && typeof tv === 'object' ? tv.dataType ?? DataType.FLOAT : DataType.FLOAT;
          set(0, sv, prod(sv) <= MAX_PROPAGATED ? new Array(prod(sv)).fill(fill) : undefined, ty);
          break;
        }
        case 'Range': {
          const [s0, l0, d0] = [V(ins[0]), V(ins[1]), V(ins[2])];
          if (!known(s0) || !known(l0) || !known(d0)) break;
          const len = Math.max(0, Math.ceil((l0[0] - s0[0]) / d0[0]));
          set(0, [len], Array.from({ length: len }, (_, i) => s0[0] + i * d0[0]));
          break;
        }
        case 'Expand': {
          const sv = V(ins[1]);
          if (!x || !sv) break;
          set(0, broadcastShapes(x, sv.map((v) => (Number.isNaN(v) ? -1 : v))));
          break;
        }
        case 'Split': {
          if (!x) break;
          const ax = normAxis(intAttr(n, 'axis', 0), x.length);
          const split = splitSizes(g, n, x[ax], V);
          if (!split) break;
          split.forEach((sz, i) => { const s = x.slice(); s[ax] = sz; set(i, s); });
          break;
        }
        case 'Resize': case 'Upsample': {
          if (!x) break;
          const rs = resizeOutput(g, n, x, V);
          if (rs) set(0, rs.out);
          break;
        }
        case 'Tile': {
          const rv = V(ins[1]);
          if (x && known(rv)) set(0, x.map((v, i) => (v < 0 ? -1 : v * rv[i])));
          break;
        }
        default:
          break;
      }
    } catch (e) {
      if (e instanceof GradcamError) throw e;
      // a shape rule that cannot apply leaves the outputs unknown
    }
  }
  // declared shapes fill gaps (value_info, outputs)
  for (const v of [...(g.graph.valueInfo ?? []), ...(g.graph.output ?? [])]) {
    if (v.name && !shapes.has(v.name)) {
      const s = valueInfoShape(v);
      if (s) shapes.set(v.name, s);
    }
  }
  return { shapes, values, types };
}

/**
 * Values of an output tensor of shape `out` read from `src` of shape `inShape`: the input index on
 * axis ax is srcIndex(outputIndexOnAx, ax, fullOutputIndex).
 */
function gatherStrided(src: number[], inShape: Shape, out: Shape, srcIndex: (o: number, ax: number, idx: number[]) => number): number[] | undefined {
  const total = prod(out);
  if (total > MAX_PROPAGATED) return undefined;
  const r = out.length;
  const inStrides = new Array(inShape.length).fill(1);
  for (let i = inShape.length - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * inShape[i + 1];
  const res: number[] = new Array(total);
  const idx = new Array(r).fill(0);
  for (let f = 0; f < total; f++) {
    let rem = f;
    for (let i = r - 1; i >= 0; i--) { idx[i] = rem % out[i]; rem = Math.floor(rem / out[i]); }
    let off = 0;
    for (let ax = 0; ax < inShape.length; ax++) off += srcIndex(idx[ax], ax, idx) * inStrides[ax];
    res[f] = src[off];
  }
  return res;
}

/** Normalized Slice parameters: [axis, begin, end, step] per sliced axis, or undefined. */
export function sliceParams(g: GraphIndex, n: NodeProto, x: Shape, V: (s: string | undefined) => number[] | undefined): Array<[number, number, number, number]> | undefined {
  const ins = n.input ?? [];
  let starts: number[] | undefined; let ends: number[] | undefined; let axes: number[] | undefined; let steps: number[] | undefined;
  if (g.opset >= 10) {
    starts = V(ins[1]); ends = V(ins[2]);
    axes = ins[3] ? V(ins[3]) : undefined; steps = ins[4] ? V(ins[4]) : undefined;
    if ((ins[3] && !axes) || (ins[4] && !steps)) return undefined;
  } else {
    starts = intsAttr(n, 'starts'); ends = intsAttr(n, 'ends'); axes = intsAttr(n, 'axes');
  }
  if (!starts || !ends || starts.some(Number.isNaN) || ends.some(Number.isNaN)) return undefined;
  const r = x.length;
  axes = axes ?? starts.map((_, i) => i);
  steps = steps ?? starts.map(() => 1);
  const res: Array<[number, number, number, number]> = [];
  for (let i = 0; i < axes.length; i++) {
    const ax = normAxis(axes[i], r);
    const dim = x[ax];
    const st = steps[i];
    if (dim < 0) {
      // an unknown dim: only the full slice is representable
      if (starts[i] === 0 && ends[i] >= 2 ** 31 && st === 1) continue;
      return undefined;
    }
    let b = starts[i] < 0 ? starts[i] + dim : starts[i];
    let e = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (st > 0) { b = Math.max(0, Math.min(dim, b)); e = Math.max(0, Math.min(dim, e)); } else { b = Math.max(-1, Math.min(dim - 1, b)); e = Math.max(-1, Math.min(dim - 1, e)); }
    res.push([ax, b, e, st]);
  }
  return res;
}

export function splitSizes(g: GraphIndex, n: NodeProto, dim: number, V: (s: string | undefined) => number[] | undefined): number[] | undefined {
  const ins = n.input ?? [];
  const outs = (n.output ?? []).length;
  const sp = g.opset >= 13 ? (ins[1] ? V(ins[1]) : undefined) : intsAttr(n, 'split');
  if (sp) return sp;
  if (dim < 0) return undefined;
  const nOut = intAttr(n, 'num_outputs', outs);
  const sz = Math.ceil(dim / nOut);
  return Array.from({ length: nOut }, (_, i) => Math.min(sz, dim - i * sz));
}

/** Resize: output shape and the per-axis scales ORT uses in its coordinate transform. */
export function resizeOutput(g: GraphIndex, n: NodeProto, x: Shape, V: (s: string | undefined) => number[] | undefined): { out: Shape; scales: number[] } | undefined {
  const ins = n.input ?? [];
  let scales: number[] | undefined; let sizes: number[] | undefined;
  if (g.opset >= 11 && n.opType !== 'Upsample') {
    scales = ins[2] ? V(ins[2]) : undefined;
    sizes = ins[3] ? V(ins[3]) : undefined;
    if (scales && scales.length === 0) scales = undefined;
    if (sizes && sizes.length === 0) sizes = undefined;
  } else {
    scales = ins[1] ? V(ins[1]) : undefined;
  }
  if (sizes && sizes.length === x.length) {
    return { out: sizes.map((s, i) => (i === 0 && Number.isNaN(s) ? x[0] : s)), scales: sizes.map((s, i) => (x[i] > 0 ? s / x[i] : 1)) };
  }
  if (scales && scales.length === x.length) return { out: x.map((v, i) => (v < 0 ? -1 : Math.floor(v * scales![i]))), scales };
  return undefined;
}
