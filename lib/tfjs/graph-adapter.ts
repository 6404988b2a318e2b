/**
 * Translates a tfjs GraphModel (a converted TensorFlow graph) into a Program, one step per graph
 * node, with the ops of common converted CNNs: (fused) convolutions, depthwise convolutions,
 * matmuls, batch norms, activations, pooling, reductions, element-wise arithmetic, reshapes and
 * concatenation. Relu and Relu6 nodes and activations fused into convolutions and matmuls can be
 * guided; a graph with an op outside this set is rejected with the list of unsupported ops.
 */
import * as tf from '@tensorflow/tfjs';
import { GradcamError, rangeErrorOf } from '../errors';
import * as ops from './ops';
import type { RunMode } from './ops';
import type { Program, ProgramNode } from './program';

interface GraphNodeLike {
  name: string;
  op: string;
  inputNames: string[];
  attrParams: Record<string, { value: unknown }>;
}
interface GraphLike {
  nodes: Record<string, GraphNodeLike>;
  inputs: GraphNodeLike[];
  outputs: GraphNodeLike[];
}

type Run = (inputs: tf.Tensor[], mode: RunMode, atLogits: boolean) => tf.Tensor;

function attr<T>(n: GraphNodeLike, name: string, dflt: T): T {
  const a = n.attrParams[name];
  return a === undefined || a.value === undefined || a.value === null ? dflt : (a.value as T);
}

function valueKey(inputName: string): string {
  return inputName.endsWith(':0') ? inputName.slice(0, -2) : inputName;
}

/** The graph behind a GraphModel (tfjs-converter keeps it on its executor). */
function graphOf(model: tf.GraphModel): GraphLike {
  const g = (model as unknown as { executor?: { graph?: GraphLike } }).executor?.graph;
  if (!g || !g.nodes) throw new GradcamError('cannot read the graph of this GraphModel (unexpected tfjs-converter version)', 'EMODEL');
  return g;
}

function convPads(n: GraphNodeLike, x: tf.Tensor4D, kH: number, kW: number): [number, number, number, number] {
  const pad = String(attr(n, 'pad', 'valid')).toLowerCase();
  const strides = attr<number[]>(n, 'strides', [1, 1, 1, 1]);
  const dil = attr<number[]>(n, 'dilations', [1, 1, 1, 1]);
  if (pad === 'explicit') {
    const e = attr<number[]>(n, 'explicitPaddings', []);
    return [e[2] ?? 0, e[3] ?? 0, e[4] ?? 0, e[5] ?? 0];
  }
  return ops.windowPads(pad === 'same' ? 'same' : 'valid', x.shape[1], x.shape[2], kH, kW, strides[1], strides[2], dil[1], dil[2]);
}

function fusedTail(n: GraphNodeLike, y: tf.Tensor, args: tf.Tensor[], mode: RunMode, atLogits: boolean): tf.Tensor {
  const fused = attr<string[]>(n, 'fusedOps', []).map((s) => s.toLowerCase());
  let out = y;
  let argIndex = 0;
  for (const f of fused) {
    if (f === 'biasadd') out = tf.add(out, args[argIndex++]);
    else if (f === 'prelu') out = tf.prelu(out, args[argIndex++]);
    else if (f === 'leakyrelu') out = tf.leakyRelu(out, attr(n, 'leakyreluAlpha', 0.2));
    else if (!(atLogits && f === 'softmax')) out = ops.activation(f, out, mode);
  }
  return out;
}

const SUPPORTED_FUSED = new Set(['biasadd', 'relu', 'relu6', 'prelu', 'leakyrelu', 'elu', 'sigmoid', 'tanh']);

function step(n: GraphNodeLike, constValue: (key: string) => number[], isConst: (key: string) => boolean, backFilterOf: (key: string, depthwise: boolean) => tf.Tensor4D | undefined): Run | undefined {
  /** an integer parameter input: constant, or computed at run time (shape arithmetic) */
  const num = (x: tf.Tensor[], i: number): number[] => {
    const key = valueKey(n.inputNames[i]);
    return isConst(key) ? constValue(key) : Array.from(x[i].dataSync());
  };
  switch (n.op) {
    case 'Shape':
      return (x) => tf.tensor1d(x[0].shape, 'int32');
    case 'Cast': {
      const dtype = attr<string>(n, 'dtype', 'float32') as tf.DataType;
      return (x) => tf.cast(x[0], dtype);
    }
    case 'Pack': {
      const axis = attr(n, 'axis', 0);
      return (x) => tf.stack(x, axis);
    }
    case 'StridedSlice': {
      const masks = ['beginMask', 'endMask', 'ellipsisMask', 'newAxisMask', 'shrinkAxisMask'].map((m) => Number(attr(n, m, 0)));
      return (x) => tf.stridedSlice(x[0], num(x, 1), num(x, 2), num(x, 3), masks[0], masks[1], masks[2], masks[3], masks[4]);
    }
    case 'Slice':
      return (x) => tf.slice(x[0], num(x, 1), num(x, 2));
    case 'Identity':
    case 'StopGradient':
    case 'Snapshot':
    case 'PreventGradient':
      return (x) => x[0];
    case 'Conv2D':
    case '_FusedConv2D':
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2dNative': {
      if (String(attr(n, 'dataFormat', 'nhwc')).toLowerCase() !== 'nhwc') return undefined;
      if (attr<string[]>(n, 'fusedOps', []).some((f) => !SUPPORTED_FUSED.has(f.toLowerCase()))) return undefined;
      const depthwise = n.op.includes('Depthwise');
      const strides = attr<number[]>(n, 'strides', [1, 1, 1, 1]);
      const dil = attr<number[]>(n, 'dilations', [1, 1, 1, 1]);
      const back = backFilterOf(valueKey(n.inputNames[1]), depthwise);
      return (x, mode, atLogits) => {
        const xi = x[0] as tf.Tensor4D;
        const f = x[1] as tf.Tensor4D;
        const pads = convPads(n, xi, f.shape[0], f.shape[1]);
        const s: [number, number] = [strides[1], strides[2]];
        const d: [number, number] = [dil[1], dil[2]];
        const y = depthwise ? ops.depthwiseConv(xi, f, s, pads, d, back) : ops.conv(xi, f, s, pads, d, back);
        return fusedTail(n, y, x.slice(2), mode, atLogits);
      };
    }
    case 'MatMul':
    case '_FusedMatMul': {
      if (attr<string[]>(n, 'fusedOps', []).some((f) => !SUPPORTED_FUSED.has(f.toLowerCase()))) return undefined;
      const ta = Boolean(attr(n, 'transposeA', false));
      const tb = Boolean(attr(n, 'transposeB', false));
      return (x, mode, atLogits) => fusedTail(n, tf.matMul(x[0] as tf.Tensor2D, x[1] as tf.Tensor2D, ta, tb), x.slice(2), mode, atLogits);
    }
    case 'BiasAdd':
    case 'Add':
    case 'AddV2':
      return (x) => tf.add(x[0], x[1]);
    case 'AddN':
      return (x) => tf.addN(x);
    case 'Sub':
      return (x) => tf.sub(x[0], x[1]);
    case 'Mul':
      return (x) => tf.mul(x[0], x[1]);
    case 'RealDiv':
    case 'Div':
      return (x) => tf.div(x[0], x[1]);
    case 'Maximum':
      return (x) => tf.maximum(x[0], x[1]);
    case 'Minimum':
      return (x) => tf.minimum(x[0], x[1]);
    case 'Neg':
      return (x) => tf.neg(x[0]);
    case 'Square':
      return (x) => tf.square(x[0]);
    case 'Sqrt':
      return (x) => tf.sqrt(x[0]);
    case 'Rsqrt':
      return (x) => tf.rsqrt(x[0]);
    case 'Exp':
      return (x) => tf.exp(x[0]);
    case 'Relu':
      return (x, mode) => ops.relu(x[0], mode);
    case 'Relu6':
      return (x, mode) => ops.relu6(x[0], mode);
    case 'LeakyRelu': {
      const alpha = attr(n, 'alpha', 0.2);
      return (x) => tf.leakyRelu(x[0], alpha);
    }
    case 'Prelu':
      return (x) => tf.prelu(x[0], x[1]);
    case 'Elu':
      return (x) => tf.elu(x[0]);
    case 'Selu':
      return (x) => tf.selu(x[0]);
    case 'Sigmoid':
      return (x) => tf.sigmoid(x[0]);
    case 'Tanh':
      return (x) => tf.tanh(x[0]);
    case 'Softplus':
      return (x) => tf.softplus(x[0]);
    case 'Softmax':
      return (x, _mode, atLogits) => (atLogits ? x[0] : tf.softmax(x[0]));
    case 'MaxPool':
    case 'AvgPool': {
      if (String(attr(n, 'dataFormat', 'nhwc')).toLowerCase() !== 'nhwc') return undefined;
      const k = attr<number[]>(n, 'kernelSize', [1, 1, 1, 1]);
      const s = attr<number[]>(n, 'strides', [1, 1, 1, 1]);
      const pad = String(attr(n, 'pad', 'valid')).toLowerCase() === 'same' ? 'same' : 'valid';
      const fn = n.op === 'MaxPool' ? ops.maxPoolFirst : tf.avgPool;
      return (x) => fn(x[0] as tf.Tensor4D, [k[1], k[2]], [s[1], s[2]], pad);
    }
    case 'Mean':
    case 'Sum':
    case 'Max': {
      const keep = Boolean(attr(n, 'keepDims', false));
      const fn = n.op === 'Mean' ? tf.mean : n.op === 'Sum' ? tf.sum : tf.max;
      return (x) => fn(x[0], num(x, 1), keep);
    }
    case 'Reshape':
      return (x) => {
        const shape = num(x, 1);
        return tf.reshape(x[0], shape.map((d, i) => (i === 0 && d !== -1 ? x[0].shape[0] : d)));
      };
    case 'Squeeze': {
      const axis = attr<number[]>(n, 'axis', []);
      return (x) => tf.squeeze(x[0], axis.length ? axis : undefined);
    }
    case 'ExpandDims':
      return (x) => tf.expandDims(x[0], num(x, 1)[0]);
    case 'ConcatV2':
      return (x) => tf.concat(x.slice(0, -1), num(x, n.inputNames.length - 1)[0]);
    case 'Concat':
      return (x) => tf.concat(x.slice(1), num(x, 0)[0]);
    case 'Pad':
    case 'PadV2':
    case 'MirrorPad': {
      if (n.op === 'MirrorPad') return undefined;
      return (x) => {
        const p = num(x, 1);
        const pairs: Array<[number, number]> = [];
        for (let i = 0; i < p.length; i += 2) pairs.push([p[i], p[i + 1]]);
        return tf.pad(x[0], pairs, n.op === 'PadV2' ? num(x, 2)[0] : 0);
      };
    }
    case 'Transpose':
      return (x) => tf.transpose(x[0], num(x, 1));
    case 'FusedBatchNorm':
    case 'FusedBatchNormV2':
    case 'FusedBatchNormV3': {
      const eps = attr(n, 'epsilon', 1e-3);
      return (x) => tf.add(tf.mul(tf.sub(x[0], x[3]), tf.mul(tf.rsqrt(tf.add(x[4], eps)), x[1])), x[2]);
    }
    default:
      return undefined;
  }
}

/**
 * Builds the Program of a GraphModel. The logits are `logitsNode` when given, else the input of
 * the final Softmax (through Identity nodes), else the model output.
 */
export function graphProgram(model: tf.GraphModel, logitsNode?: string): Program {
  const g = graphOf(model);
  if (g.inputs.length !== 1) throw new GradcamError(`a graph with ${g.inputs.length} inputs is not supported (one image input expected)`, 'EMODEL');
  if (g.outputs.length !== 1 && logitsNode === undefined) {
    throw new GradcamError(`a graph with ${g.outputs.length} outputs needs options.logitsNode`, 'EMODEL');
  }
  const weights = (model as unknown as { weights: Record<string, tf.Tensor[]> }).weights;
  const constants = new Map<string, tf.Tensor>();
  for (const [name, ts] of Object.entries(weights)) if (ts && ts[0]) constants.set(name, ts[0]);
  const constCache = new Map<string, number[]>();
  const constValue = (key: string): number[] => {
    let v = constCache.get(key);
    if (!v) {
      const t = constants.get(key);
      if (!t) throw new GradcamError(`graph node '${key}' must be a constant here`, 'EMODEL');
      v = Array.from(t.dataSync());
      constCache.set(key, v);
    }
    return v;
  };

  const owned: tf.Tensor[] = [];
  const backFilterOf = (key: string, depthwise: boolean): tf.Tensor4D | undefined => {
    const f = constants.get(key);
    if (!f || f.rank !== 4) return undefined;
    const b = ops.backwardFilter(f as tf.Tensor4D, depthwise);
    owned.push(b);
    return b;
  };
  let logitsKey: string;
  if (logitsNode !== undefined) {
    if (!g.nodes[logitsNode]) throw rangeErrorOf(`Expected a node name of the graph for logitsNode but received '${logitsNode}'`);
    logitsKey = logitsNode;
  } else {
    let n = g.outputs[0];
    while (n.op === 'Identity' && n.inputNames.length === 1) n = g.nodes[valueKey(n.inputNames[0])];
    if (n.op === 'Softmax') n = g.nodes[valueKey(n.inputNames[0])];
    logitsKey = n.name;
  }

  const nodes: ProgramNode[] = [];
  const unsupported = new Set<string>();
  const visited = new Set<string>();
  const input = g.inputs[0];
  const visit = (name: string) => {
    if (visited.has(name)) return;
    visited.add(name);
    const n = g.nodes[name];
    if (!n) throw new GradcamError(`graph node '${name}' not found`, 'EMODEL');
    if (n.op === 'Const' || constants.has(name) || n === input || n.op === 'Placeholder') return;
    for (const i of n.inputNames) {
      if (i.startsWith('^')) continue;
      visit(valueKey(i));
    }
    const run = step(n, constValue, (k) => constants.has(k), backFilterOf);
    if (!run) {
      unsupported.add(n.op);
      return;
    }
    nodes.push({ key: n.name, name: n.name, type: n.op, inputs: n.inputNames.filter((i) => !i.startsWith('^')).map(valueKey), shape: [], run });
  };
  visit(logitsKey);
  if (unsupported.size) {
    for (const t of owned) t.dispose();
    throw new GradcamError(`graph ops not supported by the gradient interpreter: ${[...unsupported].join(', ')}`, 'EUNSUPPORTED');
  }
  const shapeAttr = attr<number[]>(input, 'shape', []);
  const inputShape = shapeAttr.length ? shapeAttr.map((d, i) => (i === 0 || d < 0 ? null : d)) : [null, null, null, null];
    return { inputKey: input.name, inputShape, logitsKey, nodes, constants, owned, fallbacks: [] };
}

/** Fills node shapes with one batch-1 forward pass (unknown input dims run as 224, reported null). */
export function inferShapes(p: Program, evaluateFn: (x: tf.Tensor4D) => Map<string, tf.Tensor>): void {
  const dims = p.inputShape.slice(1).map((d) => d ?? 224);
  const unknownHW = p.inputShape[1] === null || p.inputShape[2] === null;
  tf.tidy(() => {
    const values = evaluateFn(tf.zeros([1, ...(dims as number[])]) as unknown as tf.Tensor4D);
    for (const node of p.nodes) {
      const v = values.get(node.key);
      if (!v) continue;
      node.shape = v.shape.map((d, i) => (i === 0 ? null : unknownHW && v.rank === 4 && (i === 1 || i === 2) ? null : d));
    }
  });
}
