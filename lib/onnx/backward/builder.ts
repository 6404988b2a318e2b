/**
 * The graph builder of the backward generator: emits the backward nodes and constant
 * initializers with fresh names, and holds the shapes and constant values inferred for the forward graph.
 */
import { GradcamError } from '../../errors';
import { GraphIndex, InferredGraph, Shape } from '../graph';
import { AttrValue, NodeProto, TensorProto, attr, floatTensor, int64Tensor } from '../proto';

/** 'to the end' for Slice (clamped to the dim); 2^63-1 is not a double, 2^53-1 is */
export const INT64_MAX = Number.MAX_SAFE_INTEGER;
/** 'past the start' for a reversed Slice: -2^63 is exactly representable */
export const INT64_MIN = -(2 ** 63);

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
