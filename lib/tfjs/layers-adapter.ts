/**
 * Translates a tfjs LayersModel (Keras functional or sequential, nested models inlined) into a
 * Program: each known layer runs as plain tf ops on the layer's own weights, so input gradients
 * never pay for filter gradients and every ReLU, fused ones included, can be guided. Layers we
 * do not know run through layer.apply (their inner ReLUs then keep the plain backward rule).
 */
import * as tf from '@tensorflow/tfjs';
import { GradcamError } from '../errors';
import * as ops from './ops';
import type { RunMode } from './ops';
import type { Program, ProgramNode } from './program';

type Cfg = Record<string, unknown>;
type Run = (inputs: tf.Tensor[], mode: RunMode, atLogits: boolean) => tf.Tensor;

interface SymbolicTensorLike {
  id: number;
  name: string;
  shape: Array<number | null>;
  sourceLayer: LayerLike;
  nodeIndex: number;
  tensorIndex: number;
}
interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Cfg;
  inboundNodes: Array<{ inputTensors: SymbolicTensorLike[]; outputTensors: SymbolicTensorLike[] }>;
  outboundNodes?: unknown[];
  apply(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[];
  [weight: string]: unknown;
}
interface ModelLike extends LayerLike {
  inputs: SymbolicTensorLike[];
  outputs: SymbolicTensorLike[];
  layers: LayerLike[];
}

function isModel(layer: LayerLike): layer is ModelLike {
  const m = layer as Partial<ModelLike>;
  return Array.isArray(m.layers) && Array.isArray(m.inputs) && Array.isArray(m.outputs);
}

function weight(layer: LayerLike, name: string): tf.Tensor {
  const v = layer[name] as { read(): tf.Tensor } | undefined | null;
  if (!v || typeof v.read !== 'function') throw new GradcamError(`layer '${layer.name}' has no weight '${name}'`, 'EMODEL');
  return v.read();
}

function optWeight(layer: LayerLike, name: string): tf.Tensor | undefined {
  const v = layer[name] as { read(): tf.Tensor } | undefined | null;
  return v && typeof v.read === 'function' ? v.read() : undefined;
}

function pair(v: unknown, dflt: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])];
  if (typeof v === 'number') return [v, v];
  return [dflt, dflt];
}

function activationName(cfg: Cfg): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return 'linear';
  if (typeof a === 'string') return a.toLowerCase();
  const cn = (a as { className?: string; class_name?: string }).className ?? (a as { class_name?: string }).class_name;
  return (cn ?? 'unknown').toLowerCase();
}

function channelsLast(cfg: Cfg): boolean {
  const f = cfg.dataFormat ?? cfg.data_format;
  return f === undefined || f === null || f === 'channelsLast' || f === 'channels_last';
}

type Pads = [number, number, number, number];

function zeroPads(cfg: Cfg): Pads {
  const p = cfg.padding as number | number[] | number[][];
  if (typeof p === 'number') return [p, p, p, p];
  if (Array.isArray(p) && Array.isArray(p[0])) {
    const q = p as number[][];
    return [q[0][0], q[0][1], q[1][0], q[1][1]];
  }
  const q = p as number[];
  return [q[0], q[0], q[1], q[1]];
}

/** y = x * a + b of an inference-mode BatchNormalization on the last axis, or undefined. */
function bnAffine(layer: LayerLike): [tf.Tensor, tf.Tensor] | undefined {
  const cfg = layer.getConfig();
  const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1);
  const rank = (layer.inboundNodes[0]?.inputTensors[0]?.shape.length) ?? 4;
  if (axis !== -1 && axis !== rank - 1) return undefined;
  const eps = Number(cfg.epsilon ?? 1e-3);
  const mean = weight(layer, 'movingMean');
  const variance = weight(layer, 'movingVariance');
  const gamma = cfg.scale === false ? undefined : optWeight(layer, 'gamma');
  const beta = cfg.center === false ? undefined : optWeight(layer, 'beta');
  return tf.tidy(() => {
    let s = tf.rsqrt(tf.add(variance, eps));
    if (gamma) s = tf.mul(s, gamma);
    let o = tf.neg(tf.mul(mean, s));
    if (beta) o = tf.add(o, beta);
    return [s, o] as [tf.Tensor, tf.Tensor];
  });
}

/**
 * The step of a Conv2D or DepthwiseConv2D layer, with `extraPads` from a merged ZeroPadding2D
 * before it and, when `fold` is given, a following BatchNormalization folded into its weights
 * (then `after` is that BN's activation: none). Returns undefined for what it cannot run.
 */
function convStep(layer: LayerLike, owned: tf.Tensor[], extraPads: Pads, fold?: [tf.Tensor, tf.Tensor]): Run | undefined {
  const type = layer.getClassName();
  const cfg = layer.getConfig();
  const depthwise = type === 'DepthwiseConv2D';
  if (!depthwise && Number(cfg.groups ?? 1) !== 1) return undefined;
  const act = activationName(cfg);
  const padding = (cfg.padding as string) === 'same' ? 'same' : 'valid';
  const strides = pair(cfg.strides, 1);
  const dil = pair(cfg.dilationRate, 1);
  let kernel = weight(layer, depthwise ? 'depthwiseKernel' : 'kernel') as tf.Tensor4D;
  let bias = cfg.useBias === false ? undefined : optWeight(layer, 'bias');
  if (fold) {
    const [a, b] = fold;
    [kernel, bias] = tf.tidy(() => {
      const [kh, kw, cin, m] = kernel.shape;
      const scale = depthwise ? tf.reshape(a, [1, 1, cin, m]) : a;
      const k = tf.mul(kernel, scale) as tf.Tensor4D;
      const bb = bias ? tf.add(tf.mul(bias, a), b) : tf.clone(b);
      void kh;
      void kw;
      return [k, bb] as [tf.Tensor4D, tf.Tensor];
    });
    owned.push(kernel, bias as tf.Tensor);
    a.dispose();
    b.dispose();
  }
  const back = ops.backwardFilter(kernel, depthwise);
  owned.push(back);
  const k = kernel;
  const bs = bias;
  return (x, mode, atLogits) => {
    const xi = x[0] as tf.Tensor4D;
    const h = xi.shape[1] + extraPads[0] + extraPads[1];
    const w = xi.shape[2] + extraPads[2] + extraPads[3];
    const p = ops.windowPads(padding, h, w, k.shape[0], k.shape[1], strides[0], strides[1], dil[0], dil[1]);
    const pads: Pads = [p[0] + extraPads[0], p[1] + extraPads[1], p[2] + extraPads[2], p[3] + extraPads[3]];
    let y: tf.Tensor = depthwise ? ops.depthwiseConv(xi, k, strides, pads, dil, back) : ops.conv(xi, k, strides, pads, dil, back);
    if (bs) y = tf.add(y, bs);
    return atLogits && act === 'softmax' ? y : ops.activation(act, y, mode);
  };
}

/** The step of one known layer, or undefined when it must run through layer.apply. */
function layerStep(layer: LayerLike, owned: tf.Tensor[]): Run | undefined {
  const type = layer.getClassName();
  const cfg = layer.getConfig();
  if (!channelsLast(cfg)) return undefined;
  const act = activationName(cfg);
  if (!ops.KNOWN_ACTIVATIONS.has(act)) return undefined;
  const finish = (y: tf.Tensor, mode: RunMode, atLogits: boolean) =>
    atLogits && act === 'softmax' ? y : ops.activation(act, y, mode);
  const padding = (cfg.padding as string) === 'same' ? 'same' : 'valid';

  switch (type) {
    case 'InputLayer':
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'SpatialDropout2D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
    case 'ActivityRegularization':
      return (x) => x[0];
    case 'Conv2D':
    case 'DepthwiseConv2D':
      return convStep(layer, owned, [0, 0, 0, 0]);
    case 'SeparableConv2D': {
      const dk = weight(layer, 'depthwiseKernel') as tf.Tensor4D;
      const pk = weight(layer, 'pointwiseKernel') as tf.Tensor4D;
      const bias = cfg.useBias === false ? undefined : optWeight(layer, 'bias');
      const strides = pair(cfg.strides, 1);
      const dil = pair(cfg.dilationRate, 1);
      const backD = ops.backwardFilter(dk, true);
      const backP = ops.backwardFilter(pk, false);
      owned.push(backD, backP);
      return (x, mode, atLogits) => {
        const xi = x[0] as tf.Tensor4D;
        const pads = ops.windowPads(padding, xi.shape[1], xi.shape[2], dk.shape[0], dk.shape[1], strides[0], strides[1], dil[0], dil[1]);
        let y: tf.Tensor = ops.conv(ops.depthwiseConv(xi, dk, strides, pads, dil, backD), pk, [1, 1], [0, 0, 0, 0], [1, 1], backP);
        if (bias) y = tf.add(y, bias);
        return finish(y, mode, atLogits);
      };
    }
    case 'Dense': {
      const kernel = weight(layer, 'kernel') as tf.Tensor2D;
      const bias = cfg.useBias === false ? undefined : optWeight(layer, 'bias');
      return (x, mode, atLogits) => {
        const xi = x[0];
        const flat = xi.rank === 2 ? (xi as tf.Tensor2D) : (tf.reshape(xi, [-1, xi.shape[xi.rank - 1]]) as tf.Tensor2D);
        let y: tf.Tensor = tf.matMul(flat, kernel);
        if (bias) y = tf.add(y, bias);
        if (xi.rank !== 2) y = tf.reshape(y, [...xi.shape.slice(0, -1), kernel.shape[1]]);
        return finish(y, mode, atLogits);
      };
    }
    case 'BatchNormalization': {
      const ab = bnAffine(layer);
      if (!ab) return undefined;
      const [a, b] = ab;
      owned.push(a, b);
      return (x) => tf.add(tf.mul(x[0], a), b);
    }
    case 'Activation':
      return (x, mode, atLogits) => finish(x[0], mode, atLogits);
    case 'ReLU': {
      const maxValue = cfg.maxValue === null || cfg.maxValue === undefined ? Infinity : Number(cfg.maxValue);
      if (Number(cfg.negativeSlope ?? 0) !== 0 || Number(cfg.threshold ?? 0) !== 0) return undefined;
      return (x, mode) => ops.clippedRelu(x[0], maxValue, mode);
    }
    case 'LeakyReLU': {
      const alpha = Number(cfg.alpha ?? 0.3);
      return (x) => tf.leakyRelu(x[0], alpha);
    }
    case 'ELU':
      if (Number(cfg.alpha ?? 1) !== 1) return undefined;
      return (x) => tf.elu(x[0]);
    case 'Softmax':
      return (x, _mode, atLogits) => (atLogits ? x[0] : tf.softmax(x[0]));
    case 'ZeroPadding2D': {
      const pads = zeroPads(cfg);
      return (x) => ops.pad4(x[0] as tf.Tensor4D, pads);
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const size = pair(cfg.poolSize, 2);
      const strides = cfg.strides === null || cfg.strides === undefined ? size : pair(cfg.strides, 1);
      const max = type === 'MaxPooling2D';
      return (x) => (max ? ops.maxPoolFirst : tf.avgPool)(x[0] as tf.Tensor4D, size, strides, padding);
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      const keep = Boolean(cfg.keepDims ?? cfg.keepdims ?? false);
      return (x) => (type === 'GlobalMaxPooling2D' ? tf.max : tf.mean)(x[0], [1, 2], keep);
    }
    case 'Flatten':
      return (x) => tf.reshape(x[0], [x[0].shape[0], -1]);
    case 'Reshape': {
      const target = cfg.targetShape as number[];
      return (x) => tf.reshape(x[0], [x[0].shape[0], ...target]);
    }
    case 'Add':
      return (x) => (x.length === 1 ? x[0] : tf.addN(x));
    case 'Subtract':
      return (x) => tf.sub(x[0], x[1]);
    case 'Multiply':
      return (x) => x.slice(1).reduce((acc, t) => tf.mul(acc, t), x[0]);
    case 'Average':
      return (x) => tf.div(tf.addN(x), x.length);
    case 'Maximum':
      return (x) => x.slice(1).reduce((acc, t) => tf.maximum(acc, t), x[0]);
    case 'Minimum':
      return (x) => x.slice(1).reduce((acc, t) => tf.minimum(acc, t), x[0]);
    case 'Concatenate': {
      const axis = Number(cfg.axis ?? -1);
      return (x) => tf.concat(x, axis);
    }
    default:
      return undefined;
  }
}

/** Builds the Program of a LayersModel. Throws GradcamError when it has several inputs or outputs. */
export function layersProgram(model: tf.LayersModel): Program {
  const m = model as unknown as ModelLike;
  if (m.inputs.length !== 1) throw new GradcamError(`a model with ${m.inputs.length} inputs is not supported (one image input expected)`, 'EMODEL');
  if (m.outputs.length !== 1) throw new GradcamError(`a model with ${m.outputs.length} outputs is not supported (one logits output expected)`, 'EMODEL');
  const nodes: ProgramNode[] = [];
  const owned: tf.Tensor[] = [];
  const fallbacks: string[] = [];
  const done = new Set<string>();
  const usedNames = new Set<string>();
  const keyOf = (t: SymbolicTensorLike) => `t${t.id}`;
  const aliasOf = new Map<string, string>();

  /**
   * Fusions that save work in both passes: a linear Conv2D/DepthwiseConv2D followed only by a
   * BatchNormalization runs as one convolution with folded weights, and a ZeroPadding2D feeding
   * only a 'valid' convolution becomes that convolution's own padding (no pad/slice pair).
   */
  const single = (l: LayerLike) => l.inboundNodes.length === 1 && (l.outboundNodes?.length ?? 0) === 1 && !isModel(l);
  const isConv = (l: LayerLike) => {
    const t = l.getClassName();
    if (t !== 'Conv2D' && t !== 'DepthwiseConv2D') return false;
    const c = l.getConfig();
    return channelsLast(c) && Number(c.groups ?? 1) === 1 && ops.KNOWN_ACTIVATIONS.has(activationName(c));
  };
  const convInput = (conv: LayerLike): { input: SymbolicTensorLike; pads: Pads } => {
    const input = conv.inboundNodes[0].inputTensors[0];
    const src = input.sourceLayer;
    if ((conv.getConfig().padding as string) !== 'same' && src.getClassName() === 'ZeroPadding2D' && single(src) && channelsLast(src.getConfig())) {
      return { input: src.inboundNodes[0].inputTensors[0], pads: zeroPads(src.getConfig()) };
    }
    return { input, pads: [0, 0, 0, 0] };
  };
  const mergedConv = (layer: LayerLike, inputs: SymbolicTensorLike[]): { input: SymbolicTensorLike; run: Run | undefined } | undefined => {
    if (inputs.length !== 1) return undefined;
    if (layer.getClassName() === 'BatchNormalization') {
      const conv = inputs[0].sourceLayer;
      if (!isConv(conv) || !single(conv) || activationName(conv.getConfig()) !== 'linear') return undefined;
      const ab = bnAffine(layer);
      if (!ab) return undefined;
      const { input, pads } = convInput(conv);
      return { input, run: convStep(conv, owned, pads, ab) };
    }
    if (isConv(layer)) {
      const { input, pads } = convInput(layer);
      if (input === inputs[0]) return undefined;
      return { input, run: convStep(layer, owned, pads) };
    }
    return undefined;
  };

  // Post-order DFS from the output; nested models are inlined, their inputs aliased.
  const visit = (t: SymbolicTensorLike, aliases: Map<string, string>, prefix: string): string => {
    const key = aliases.get(keyOf(t)) ?? keyOf(t);
    if (done.has(key)) return key;
    const layer = t.sourceLayer;
    const inbound = layer.inboundNodes[t.nodeIndex];
    if (!inbound || inbound.inputTensors.length === 0 || layer.getClassName() === 'InputLayer') {
      return key; // a model input
    }
    const merged = isModel(layer) ? undefined : mergedConv(layer, inbound.inputTensors);
    const inKeys = merged ? [visit(merged.input, aliases, prefix)] : inbound.inputTensors.map((s) => visit(s, aliases, prefix));
    if (done.has(key)) return key;
    if (isModel(layer)) {
      const inner = new Map(aliases);
      layer.inputs.forEach((s, i) => inner.set(keyOf(s), inKeys[i]));
      const out = layer.outputs[t.tensorIndex];
      const outKey = visit(out, inner, `${prefix}${layer.name}/`);
      nodes.push({ key, name: `${prefix}${layer.name}`, type: layer.getClassName(), inputs: [outKey], shape: t.shape, run: (x) => x[0] });
      aliasOf.set(key, outKey);
      done.add(key);
      return key;
    }
    let run = merged ? merged.run : layerStep(layer, owned);
    if (!run) {
      fallbacks.push(layer.getClassName());
      const l = layer;
      const idx = t.tensorIndex;
      run = (x) => {
        const out = l.apply(x.length === 1 ? x[0] : x);
        return Array.isArray(out) ? out[idx] : out;
      };
    }
    let name = layer.name;
    if (usedNames.has(name)) name = `${prefix}${layer.name}`;
    if (usedNames.has(name)) name = `${name}:${t.nodeIndex}`;
    usedNames.add(name);
    nodes.push({ key, name, type: layer.getClassName(), inputs: inKeys, shape: t.shape, run });
    done.add(key);
    return key;
  };

  const inputKey = keyOf(m.inputs[0]);
  let logitsKey = visit(m.outputs[0], new Map(), '');
  while (aliasOf.has(logitsKey)) logitsKey = aliasOf.get(logitsKey) as string;
  // drop nodes the logits no longer read (convolutions folded into a BN, merged paddings)
  const needed = new Set<string>([logitsKey]);
  for (let i = nodes.length - 1; i >= 0; i--) if (needed.has(nodes[i].key)) for (const k of nodes[i].inputs) needed.add(k);
  const live = nodes.filter((n) => needed.has(n.key));
  nodes.length = 0;
  nodes.push(...live);
  // For a final Activation('softmax') / Softmax layer, logits = its input: the node itself passes through at atLogits.
  return { inputKey, inputShape: m.inputs[0].shape, logitsKey, nodes, constants: new Map(), owned, fallbacks };
}
