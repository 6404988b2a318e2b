/**
 * Every backward rule of the ONNX generator against central finite differences computed with
 * ONNX Runtime on the forward model. Each case is a tiny graph built here: x [N,...] -> ops under
 * test -> Flatten -> MatMul(random W) -> logits [N,3]; the analytic dY/dx of logits[:,c] comes
 * from the generated model, the numeric one from a batch of perturbed copies of x in one run.
 */
import * as assert from 'node:assert';
import * as ort from 'onnxruntime-node';
import { GradcamError } from '../lib/errors';
import { GradientRun, GradientSessionOptions, OnnxGradientSession, RELU_RULES, ReluRule, buildGradientModel } from '../lib/onnx';
import {
  AttrValue, DataType, ModelProto, NodeProto, TensorProto, floatTensor, int64Tensor, node, saveModel,
} from '../lib/onnx/proto';

/** deterministic pseudo-random numbers in [-1, 1) */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

interface Case {
  name: string;
  /** input shape without the batch */
  shape: number[];
  /** nodes from 'x' to 'y' (any shape); the checker appends Flatten + MatMul */
  nodes: NodeProto[];
  inits?: TensorProto[];
  opset?: number;
  /** the flattened size of y (the width of the projection) */
  ySize: number;
  /** input values: 'random' (default) in [-2,2] away from `avoid`; 'distinct': a shuffled grid 0.1 apart (MaxPool) */
  values?: 'random' | 'distinct';
  avoid?: number[];
  eps?: number;
  classIndex?: number;
}

const order = (x: NodeProto) => ['ReduceSum', 'Unsqueeze', 'Reshape', 'Transpose', 'Gemm'].indexOf(x.opType as string);
const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);
const f = (name: string, dims: number[], seed: number, scale = 1) => {
  const r = rng(seed);
  return floatTensor(name, dims, Array.from({ length: prod(dims) }, () => r() * scale));
};
const n = (op: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}) =>
  node(op, inputs, outputs, `${op}_${outputs[0]}`, attrs);

function buildModel(c: Case): ModelProto {
  const proj = f('W_proj', [c.ySize, 3], 99);
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: c.opset ?? 13 }],
    producerName: 'gradcam-node test',
    graph: {
      name: c.name,
      node: [
        ...c.nodes,
        n('Flatten', ['y'], ['y_flat'], { axis: 1 }),
        n('MatMul', ['y_flat', 'W_proj'], ['logits']),
      ],
      initializer: [...(c.inits ?? []), proj],
      input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, ...c.shape.map((d) => ({ dimValue: d }))] } } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
    },
  };
}

function inputValues(c: Case): Float32Array {
  const len = prod(c.shape);
  const r = rng(7 + c.name.length);
  if (c.values === 'distinct') {
    const v = Array.from({ length: len }, (_, i) => (i - len / 2) * 0.1);
    for (let i = len - 1; i > 0; i--) {
      const j = Math.floor(((r() + 1) / 2) * (i + 1));
      [v[i], v[j]] = [v[j], v[i]];
    }
    return Float32Array.from(v);
  }
  const avoid = c.avoid ?? [0];
  return Float32Array.from({ length: len }, () => {
    let x = r() * 2;
    for (const a of avoid) if (Math.abs(x - a) < 0.1) x = a + (x >= a ? 0.1 : -0.1) + r() * 0.02;
    return x;
  });
}

async function checkCase(c: Case, stridedConv?: 'polyphase' | 'convtranspose'): Promise<void> {
  const model = buildModel(c);
  const x = inputValues(c);
  const cls = c.classIndex ?? 1;
  const shape4 = [1, ...c.shape] as [number, number, number, number];
  assert.strictEqual(shape4.length, 4, 'test inputs are 4-D');
  const gs = await OnnxGradientSession.create(saveModel(model), { layer: null, inputGrad: 'plain', executionProvider: 'cpu', intraOpThreads: 1, stridedConv });
  const run = await gs.run({ data: x, shape: shape4, layout: 'nchw' }, new Int32Array([cls]));
  await gs.dispose();
  const analytic = run.inputGrad as Float32Array;
  assert.strictEqual(analytic.length, x.length);

  // central differences: 2*len perturbed copies of x in one batch
  const eps = c.eps ?? 1e-2;
  const len = x.length;
  const batch = new Float32Array(2 * len * len);
  for (let i = 0; i < len; i++) {
    batch.set(x, 2 * i * len); batch.set(x, (2 * i + 1) * len);
    batch[2 * i * len + i] += eps; batch[(2 * i + 1) * len + i] -= eps;
  }
  const fwd = await ort.InferenceSession.create(saveModel(model), { intraOpNumThreads: 1 });
  const out = await fwd.run({ x: new ort.Tensor('float32', batch, [2 * len, ...c.shape]) });
  await fwd.release();
  const logits = out.logits.data as Float32Array;
  const numeric = Float32Array.from({ length: len }, (_, i) => (logits[2 * i * 3 + cls] - logits[(2 * i + 1) * 3 + cls]) / (2 * eps));
  let scale = 0; let worst = 0; let at = -1;
  for (let i = 0; i < len; i++) scale = Math.max(scale, Math.abs(numeric[i]));
  for (let i = 0; i < len; i++) {
    const d = Math.abs(analytic[i] - numeric[i]);
    if (d > worst) { worst = d; at = i; }
  }
  assert.ok(scale > 1e-3, `${c.name}: the numeric gradient is ~0 (${scale}); the case tests nothing`);
  assert.ok(worst <= 1e-2 * scale + 1e-4,
    `${c.name}: analytic ${analytic[at]} vs numeric ${numeric[at]} at ${at} (max |d| ${worst}, scale ${scale})`);
}

// --------------------------------------------------------------------------------- the cases

const conv = (name: string, ci: number, co: number, k: number[], attrs: Record<string, AttrValue>, group = 1, seed = 3): [NodeProto, TensorProto[]] => {
  const w = f(`${name}_W`, [co, ci / group, ...k], seed, 0.5);
  const b = f(`${name}_B`, [co], seed + 1, 0.1);
  return [n('Conv', ['x', w.name as string, b.name as string], ['y'], { kernel_shape: k, group, ...attrs }), [w, b]];
};

function convCase(name: string, shape: number[], co: number, k: number[], attrs: Record<string, AttrValue>, group: number, ySize: number): Case {
  const [nd, inits] = conv(name, shape[0], co, k, attrs, group);
  return { name, shape, nodes: [nd], inits, ySize };
}

const unary = (op: string, shape: number[], attrs: Record<string, AttrValue> = {}, extra: Partial<Case> = {}): Case => ({
  name: op, shape, nodes: [n(op, ['x'], ['y'], attrs)], ySize: prod(shape), ...extra,
});

const CASES: Case[] = [
  // Conv: stride 1 (flipped-weight Conv), strided (ConvTranspose with and without output_padding),
  // grouped, depthwise, dilated, auto_pad, asymmetric pads
  convCase('conv 3x3 s1 p1', [2, 5, 5], 3, [3, 3], { pads: [1, 1, 1, 1] }, 1, 75),
  convCase('conv 3x3 s2 p1 on 7x7 (output_padding 0)', [2, 7, 7], 3, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 48),
  convCase('conv 3x3 s2 p1 on 8x8 (output_padding 1)', [2, 8, 8], 3, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 48),
  convCase('conv 2x3 s(3,2) asymmetric pads', [1, 7, 6], 2, [2, 3], { pads: [0, 1, 1, 0], strides: [3, 2] }, 1, 2 * 3 * 3),
  convCase('conv grouped g=2 s1', [4, 5, 5], 4, [3, 3], { pads: [1, 1, 1, 1] }, 2, 100),
  convCase('conv grouped g=2 s2', [4, 6, 6], 6, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 2, 54),
  convCase('conv depthwise s1', [3, 5, 5], 3, [3, 3], { pads: [1, 1, 1, 1] }, 3, 75),
  convCase('conv depthwise multiplier 2 s2', [3, 6, 6], 6, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 3, 54),
  convCase('conv dilated d=2 s1', [2, 7, 7], 2, [3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2] }, 1, 98),
  convCase('conv dilated d=2 s2', [2, 8, 8], 2, [3, 3], { pads: [1, 1, 1, 1], dilations: [2, 2], strides: [2, 2] }, 1, 2 * 3 * 3),
  convCase('conv auto_pad SAME_UPPER s2', [2, 7, 7], 2, [3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }, 1, 32),
  convCase('conv auto_pad SAME_LOWER s1 k4', [2, 5, 5], 2, [4, 4], { auto_pad: 'SAME_LOWER' }, 1, 50),
  convCase('conv 1x1 no pads', [3, 4, 4], 5, [1, 1], {}, 1, 80),
  (() => {
    const w = f('ct_W', [2, 3, 3, 3], 5, 0.5);
    return { name: 'ConvTranspose s2 output_padding 1', shape: [2, 4, 4], nodes: [n('ConvTranspose', ['x', 'ct_W'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] })], inits: [w], ySize: 3 * 8 * 8 };
  })(),
  (() => {
    const w = f('ctg_W', [4, 1, 2, 2], 6, 0.5);
    return { name: 'ConvTranspose grouped s2', shape: [4, 3, 3], nodes: [n('ConvTranspose', ['x', 'ctg_W'], ['y'], { kernel_shape: [2, 2], strides: [2, 2], group: 4 })], inits: [w], ySize: 4 * 6 * 6 };
  })(),
  {
    name: 'BatchNormalization', shape: [3, 2, 2], ySize: 12,
    nodes: [n('BatchNormalization', ['x', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['y'], { epsilon: { float: 1e-3 } })],
    inits: [floatTensor('bn_s', [3], [0.5, -1.5, 2]), floatTensor('bn_b', [3], [0.1, 0.2, 0.3]), floatTensor('bn_m', [3], [0.3, -0.2, 0]), floatTensor('bn_v', [3], [0.5, 2, 1.5])],
  },
  // activations (inputs kept away from the kinks)
  unary('Relu', [2, 3, 3]),
  {
    name: 'Clip(0,6) via inputs', shape: [2, 3, 3], ySize: 18, avoid: [0, 1.5],
    nodes: [n('Mul', ['x', 'four'], ['x4']), n('Clip', ['x4', 'lo', 'hi'], ['y'])],
    inits: [floatTensor('four', [], [4]), floatTensor('lo', [], [0]), floatTensor('hi', [], [6])],
  },
  {
    name: 'Clip min only', shape: [2, 3, 3], ySize: 18, avoid: [-0.5],
    nodes: [n('Clip', ['x', 'lo2'], ['y'])], inits: [floatTensor('lo2', [], [-0.5])],
  },
  unary('LeakyRelu', [2, 3, 3], { alpha: { float: 0.1 } }),
  unary('Sigmoid', [2, 3, 3]),
  unary('Tanh', [2, 3, 3]),
  unary('HardSigmoid', [2, 3, 3], { alpha: { float: 0.4 }, beta: { float: 0.5 } }, { avoid: [-1.25, 1.25] }),
  {
    name: 'HardSwish', shape: [2, 3, 3], ySize: 18, opset: 14, avoid: [-1.5, 1.5],
    nodes: [n('Mul', ['x', 'two'], ['x2']), n('HardSwish', ['x2'], ['y'])], inits: [floatTensor('two', [], [2])],
  },
  unary('Softmax', [1, 2, 5], { axis: -1 }),
  unary('LogSoftmax', [1, 2, 5], { axis: 3 }),
  unary('Identity', [1, 2, 3]),
  unary('Neg', [1, 2, 3]),
  // element-wise binary ops with broadcasting, both inputs depending on x (accumulation)
  ...['Add', 'Sub', 'Mul', 'Div'].map((op): Case => ({
    name: `${op} broadcast [1,2,3,4] with [1,2,1,1] and [4]`, shape: [2, 3, 4], ySize: 24,
    nodes: [
      n('ReduceMean', ['x'], ['m'], { axes: [2, 3], keepdims: 1 }),
      n('Add', ['m', 'three'], ['m3']),
      n(op, ['x', 'm3'], ['t']),
      n(op, ['t', 'row'], ['u']),
      n(op, ['u', 'm3'], ['y']),
    ],
    inits: [floatTensor('three', [], [3]), floatTensor('row', [4], [1.5, -2, 2.5, 3])],
  })),
  {
    name: 'Sum and Mean (variadic, broadcasting)', shape: [2, 2, 3], ySize: 12,
    nodes: [n('ReduceSum', ['x', 'ax1'], ['s'], { keepdims: 1 }), n('Sum', ['x', 's', 'row3'], ['t']), n('Mean', ['t', 'x'], ['y'])],
    inits: [int64Tensor('ax1', [1], [1]), floatTensor('row3', [3], [1, 2, 3])],
  },
  {
    name: 'Expand', shape: [2, 1, 3], ySize: 24,
    nodes: [n('Expand', ['x', 'eshape'], ['y'])], inits: [int64Tensor('eshape', [4], [1, 2, 4, 3])],
  },
  // matrix products
  {
    name: 'MatMul 2-D and batched 3-D with a broadcast weight', shape: [2, 3, 4], ySize: 2 * 3 * 5,
    nodes: [n('MatMul', ['x', 'mmW'], ['h']), n('MatMul', ['h', 'mmW2'], ['y'])],
    inits: [f('mmW', [4, 5], 11), f('mmW2', [2, 5, 5], 12)],
  },
  {
    name: 'MatMul of two data-dependent operands', shape: [1, 3, 4], ySize: 9,
    nodes: [n('Reshape', ['x', 's2'], ['a']), n('Transpose', ['a'], ['at'], { perm: [0, 2, 1] }), n('MatMul', ['a', 'at'], ['y'])],
    inits: [int64Tensor('s2', [3], [0, 3, 4])],
  },
  {
    name: 'Gemm transB alpha beta', shape: [1, 2, 3], ySize: 4,
    nodes: [n('Flatten', ['x'], ['x2'], { axis: 1 }), n('Gemm', ['x2', 'gW', 'gC'], ['y'], { transB: 1, alpha: { float: 0.7 }, beta: { float: 1.3 } })],
    inits: [f('gW', [4, 6], 13), f('gC', [4], 14)],
  },
  {
    name: 'Gemm transA with data-dependent C', shape: [1, 2, 3], ySize: 4,
    nodes: [
      n('ReduceSum', ['x', 'axAll'], ['cc'], { keepdims: 0 }),
      n('Reshape', ['x', 'sA'], ['a0']), n('Transpose', ['a0'], ['a'], { perm: [1, 0] }),
      n('Gemm', ['a', 'gW2', 'cc1'], ['y'], { transA: 1, alpha: { float: 1.5 }, beta: { float: 0.5 } }),
      n('Unsqueeze', ['cc', 'ax1u'], ['cc1']),
    ].sort((p, q) => order(p) - order(q)),
    inits: [int64Tensor('sA', [2], [-1, 6]), f('gW2', [6, 4], 15), int64Tensor('axAll', [3], [1, 2, 3]), int64Tensor('ax1u', [1], [1])],
  },
  // pooling
  { name: 'MaxPool 3x3 s2 p1 (overlapping windows)', shape: [2, 7, 7], ySize: 2 * 16, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })] },
  { name: 'MaxPool 3x3 s1 (shared maxima)', shape: [1, 5, 5], ySize: 9, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [3, 3] })] },
  { name: 'MaxPool 2x2 s2 ceil_mode', shape: [2, 5, 5], ySize: 18, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })] },
  { name: 'MaxPool 2x2 s2 (MaxUnpool)', shape: [2, 4, 6], ySize: 12, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] })] },
  { name: 'MaxPool 2x3 s(2,3) pads (MaxUnpool)', shape: [1, 5, 7], ySize: 6, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [2, 3], strides: [2, 3], pads: [1, 1, 0, 0] })] },
  { name: 'AveragePool 3x3 s2 p1 count_include_pad=0', shape: [2, 7, 7], ySize: 32, nodes: [n('AveragePool', ['x'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })] },
  { name: 'AveragePool 3x3 s2 p1 count_include_pad=1', shape: [2, 8, 8], ySize: 32, nodes: [n('AveragePool', ['x'], ['y'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 })] },
  { name: 'AveragePool 2x2 s2 ceil_mode', shape: [1, 5, 5], ySize: 9, nodes: [n('AveragePool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })] },
  { name: 'AveragePool 2x2 s2', shape: [2, 4, 6], ySize: 12, nodes: [n('AveragePool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] })] },
  { name: 'GlobalAveragePool', shape: [3, 4, 5], ySize: 3, nodes: [n('GlobalAveragePool', ['x'], ['y'])] },
  // layout ops
  {
    name: 'Shape/Gather/Unsqueeze/Concat/Reshape pattern, Flatten, Transpose', shape: [2, 3, 4], ySize: 24,
    nodes: [
      n('Shape', ['x'], ['sh']), n('Gather', ['sh', 'zero'], ['n0'], { axis: 0 }), n('Unsqueeze', ['n0', 'ax0'], ['n1']),
      n('Concat', ['n1', 'minus1'], ['tgt'], { axis: 0 }), n('Reshape', ['x', 'tgt'], ['r']),
      n('Reshape', ['r', 's234'], ['r2']), n('Transpose', ['r2'], ['t'], { perm: [0, 3, 1, 2] }),
      n('Flatten', ['t'], ['y'], { axis: 1 }),
    ],
    inits: [int64Tensor('zero', [], [0]), int64Tensor('ax0', [1], [0]), int64Tensor('minus1', [1], [-1]), int64Tensor('s234', [4], [-1, 2, 3, 4])],
  },
  {
    name: 'Squeeze/Unsqueeze, Concat of branches, Split', shape: [1, 3, 4], ySize: 2 * 3 * 4 + 9,
    nodes: [
      n('Squeeze', ['x', 'ax1'], ['s']), n('Unsqueeze', ['s', 'ax1'], ['u']), n('Sigmoid', ['u'], ['sg']),
      n('Concat', ['u', 'sg'], ['c'], { axis: 1 }),
      n('Split', ['x', 'split'], ['p0', 'p1'], { axis: 3 }), n('Mul', ['p0', 'p0'], ['q']),
      n('Flatten', ['c'], ['cf'], { axis: 1 }), n('Flatten', ['q'], ['qf'], { axis: 1 }),
      n('Concat', ['cf', 'qf'], ['y'], { axis: 1 }),
    ],
    inits: [int64Tensor('ax1', [1], [1]), int64Tensor('split', [2], [3, 1])],
  },
  {
    name: 'Pad, Slice, Gather (scalar index)', shape: [2, 4, 5], ySize: 2 * 5 * 3 + 2 * 4,
    nodes: [
      n('Pad', ['x', 'pads'], ['p'], { mode: 'constant' }), n('Slice', ['p', 'st', 'en', 'axs'], ['s']),
      n('Gather', ['x', 'gi'], ['g'], { axis: 3 }),
      n('Flatten', ['s'], ['sf'], { axis: 1 }), n('Flatten', ['g'], ['gf'], { axis: 1 }),
      n('Concat', ['sf', 'gf'], ['y'], { axis: 1 }),
    ],
    inits: [
      int64Tensor('pads', [8], [0, 0, 1, 2, 0, 0, 2, 0]), int64Tensor('st', [2], [1, 1]), int64Tensor('en', [2], [6, 4]),
      int64Tensor('axs', [2], [2, 3]), int64Tensor('gi', [], [-2]),
    ],
  },
  {
    name: 'ReduceMean keepdims=0, ReduceSum', shape: [2, 3, 4], ySize: 2 + 2 * 3,
    nodes: [
      n('ReduceMean', ['x'], ['m'], { axes: [2, 3], keepdims: 0 }), n('ReduceSum', ['x', 'ax3'], ['s'], { keepdims: 0 }),
      n('Flatten', ['s'], ['sf'], { axis: 1 }), n('Concat', ['m', 'sf'], ['y'], { axis: 1 }),
    ],
    inits: [int64Tensor('ax3', [1], [3])],
  },
  {
    name: 'Resize nearest x2 (asymmetric, floor), linear x2 (half_pixel), linear x(2,1.5) (align_corners)', shape: [2, 3, 4], ySize: 2 * 6 * 8 * 2 + 2 * 6 * 6,
    nodes: [
      n('Resize', ['x', '', 'sc2'], ['a'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }),
      n('Resize', ['x', '', 'sc2'], ['b'], { mode: 'linear' }),
      n('Resize', ['x', '', 'sc3'], ['c'], { mode: 'linear', coordinate_transformation_mode: 'align_corners' }),
      n('Flatten', ['a'], ['af'], { axis: 1 }), n('Flatten', ['b'], ['bf'], { axis: 1 }), n('Flatten', ['c'], ['cf'], { axis: 1 }),
      n('Concat', ['af', 'bf', 'cf'], ['y'], { axis: 1 }),
    ],
    inits: [floatTensor('sc2', [4], [1, 1, 2, 2]), floatTensor('sc3', [4], [1, 1, 2, 1.5])],
  },
  {
    name: 'Dropout, Cast float->float', shape: [1, 2, 3], ySize: 6,
    nodes: [n('Dropout', ['x'], ['d']), n('Cast', ['d'], ['y'], { to: DataType.FLOAT })],
  },
  {
    name: 'multi-consumer accumulation: Conv+Relu feeding Conv, Sigmoid and MaxPool', shape: [2, 6, 6], ySize: 3 * 36 + 2 * 36 + 2 * 9,
    nodes: [
      n('Conv', ['x', 'mc_W1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), n('Relu', ['c1'], ['r']),
      n('Conv', ['r', 'mc_W2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      n('Sigmoid', ['r'], ['s']), n('MaxPool', ['r'], ['m'], { kernel_shape: [2, 2], strides: [2, 2] }),
      n('Flatten', ['c2'], ['f1'], { axis: 1 }), n('Flatten', ['s'], ['f2'], { axis: 1 }), n('Flatten', ['m'], ['f3'], { axis: 1 }),
      n('Concat', ['f1', 'f2', 'f3'], ['y'], { axis: 1 }),
    ],
    inits: [f('mc_W1', [2, 2, 3, 3], 21, 0.5), f('mc_W2', [3, 2, 3, 3], 22, 0.5)],
    eps: 1e-3,
  },
  {
    name: 'opset 11 forms (Unsqueeze/Squeeze/ReduceSum axes attributes, Split attribute, Softmax 2-D)', shape: [2, 2, 3], ySize: 14,
    opset: 11,
    nodes: [
      n('ReduceSum', ['x'], ['s'], { axes: [3], keepdims: 0 }), n('Unsqueeze', ['s'], ['u'], { axes: [3] }), n('Mul', ['x', 'u'], ['m']),
      n('Squeeze', ['u'], ['q'], { axes: [3] }), n('Flatten', ['q'], ['qf'], { axis: 1 }), n('Softmax', ['qf'], ['sm'], { axis: 1 }),
      n('Split', ['m'], ['m0', 'm1'], { axis: 1, split: [1, 1] }), n('Flatten', ['m1'], ['mf'], { axis: 1 }),
      n('Flatten', ['m0'], ['m0f'], { axis: 1 }), n('Add', ['mf', 'm0f'], ['a']),
      n('Concat', ['a', 'sm', 'sm'], ['y'], { axis: 1 }),
    ],
    classIndex: 2,
  },
  {
    name: 'opset 11 model raised to 16 for MaxPool (Squeeze/Unsqueeze/ReduceSum/Split rewritten, Softmax last axis)', shape: [2, 2, 3], ySize: 14,
    opset: 11, values: 'distinct',
    nodes: [
      n('MaxPool', ['x'], ['xm'], { kernel_shape: [1, 2], pads: [0, 0, 0, 1] }),
      n('ReduceSum', ['xm'], ['s'], { axes: [3], keepdims: 0 }), n('Unsqueeze', ['s'], ['u'], { axes: [3] }), n('Mul', ['xm', 'u'], ['m']),
      n('Squeeze', ['u'], ['q'], { axes: [3] }), n('Flatten', ['q'], ['qf'], { axis: 1 }), n('Softmax', ['qf'], ['sm']),
      n('Split', ['m'], ['m0', 'm1'], { axis: 1, split: [1, 1] }), n('Flatten', ['m1'], ['mf'], { axis: 1 }),
      n('Flatten', ['m0'], ['m0f'], { axis: 1 }), n('Add', ['mf', 'm0f'], ['a']),
      n('Concat', ['a', 'sm', 'sm'], ['y'], { axis: 1 }),
    ],
    eps: 1e-3,
  },
  {
    name: 'Abs, Sqrt, Log, Reciprocal, Exp, Erf, Softplus, Elu', shape: [1, 2, 3], ySize: 48, eps: 1e-3,
    nodes: [
      n('Abs', ['x'], ['a']), n('Sqrt', ['a'], ['s']), n('Log', ['a'], ['l']), n('Add', ['a', 'one'], ['a1']), n('Reciprocal', ['a1'], ['r']),
      n('Mul', ['x', 'half'], ['xh']), n('Exp', ['xh'], ['e']), n('Erf', ['x'], ['f']), n('Softplus', ['x'], ['sp']),
      n('Elu', ['x'], ['el'], { alpha: { float: 0.7 } }),
      n('Concat', ['a', 's', 'l', 'r', 'e', 'f', 'sp', 'el'], ['y'], { axis: 1 }),
    ],
    inits: [floatTensor('one', [], [1]), floatTensor('half', [], [0.5])],
  },
  {
    name: 'PRelu, Pow (constant and data-dependent exponent), Max, Min, Where', shape: [2, 3, 3], ySize: 6 * 18, eps: 1e-3,
    avoid: [0, 0.3, 0.659],
    nodes: [
      n('PRelu', ['x', 'slope'], ['p']),
      n('Pow', ['x', 'three'], ['w']),
      n('Abs', ['x'], ['ax']), n('Add', ['ax', 'half'], ['base']), n('Sigmoid', ['x'], ['sg']), n('Add', ['sg', 'one'], ['ex']),
      n('Pow', ['base', 'ex'], ['w2']),
      n('Mul', ['x', 'mhalf'], ['xm']), n('Max', ['x', 'xm'], ['mx']), n('Min', ['x', 'sg'], ['mn']),
      n('Greater', ['x', 'thr'], ['c']), n('Mul', ['x', 'x'], ['xx']), n('Where', ['c', 'xx', 'x'], ['wh']),
      n('Concat', ['p', 'w', 'w2', 'mx', 'mn', 'wh'], ['y'], { axis: 1 }),
    ],
    inits: [floatTensor('slope', [2, 1, 1], [0.2, -0.4]), floatTensor('three', [], [3]), floatTensor('one', [], [1]), floatTensor('half', [], [0.5]), floatTensor('mhalf', [], [-0.5]), floatTensor('thr', [], [0.3])],
  },
  { name: 'GlobalMaxPool', shape: [2, 3, 4], ySize: 2, values: 'distinct', nodes: [n('GlobalMaxPool', ['x'], ['y'])] },
  {
    name: 'LayerNormalization (last axis, and axis 2)', shape: [2, 3, 4], ySize: 48, opset: 17, eps: 1e-3,
    nodes: [
      n('LayerNormalization', ['x', 'ln_s', 'ln_b'], ['l1'], { epsilon: { float: 1e-5 } }),
      n('LayerNormalization', ['x', 'ln_s2', 'ln_b2'], ['l2'], { axis: 2, epsilon: { float: 1e-3 } }),
      n('Concat', ['l1', 'l2'], ['y'], { axis: 1 }),
    ],
    inits: [f('ln_s', [4], 31), f('ln_b', [4], 32), f('ln_s2', [3, 4], 33), f('ln_b2', [3, 4], 34)],
  },
  {
    name: 'InstanceNormalization', shape: [2, 3, 4], ySize: 24, eps: 1e-3,
    nodes: [n('InstanceNormalization', ['x', 'in_s', 'in_b'], ['y'], { epsilon: { float: 1e-4 } })],
    inits: [f('in_s', [2], 35), f('in_b', [2], 36)],
  },
  ...[false, true].map((pool): Case => ({
    name: `opset 9 forms (Slice and Clip arguments as attributes, BatchNormalization-9) raised to ${pool ? 16 : 13}`,
    shape: [2, 3, 4], ySize: 2 * 3 * 3, opset: 9, avoid: [0, 6], eps: 1e-3,
    nodes: [
      n('Conv', ['x', 'w9'], ['c9'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      n('BatchNormalization', ['c9', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['b9'], { epsilon: { float: 1e-3 } }),
      ...(pool ? [n('MaxPool', ['b9'], ['b9p'], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] })] : [n('Identity', ['b9'], ['b9p'])]),
      n('Clip', ['b9p'], ['k9'], { min: { float: 0 }, max: { float: 6 } }),
      n('Slice', ['k9'], ['y'], { starts: [1], ends: [2 ** 63], axes: [3] }),
    ],
    inits: [f('w9', [2, 2, 3, 3], 41, 2), f('bn_s', [2], 42), f('bn_b', [2], 43), f('bn_m', [2], 44), floatTensor('bn_v', [2], [1.5, 0.5])],
  })),
  ...[false, true].map((pool): Case => ({
    name: `opset 10 forms (Clip min/max and Pad as attributes, Resize-10, Dropout ratio)${pool ? ' raised to 16 for MaxPool' : ''}`,
    shape: [2, 3, 3], ySize: 2 * 6 * 8, opset: 10, avoid: [0, 1.5], eps: pool ? 1e-3 : 1e-2,
    nodes: [
      n('Mul', ['x', 'four'], ['x4']),
      ...(pool ? [n('MaxPool', ['x4'], ['x4p'], { kernel_shape: [1, 1] })] : [n('Identity', ['x4'], ['x4p'])]),
      n('Clip', ['x4p'], ['c'], { min: { float: 0 }, max: { float: 6 } }),
      n('Pad', ['c'], ['p'], { pads: [0, 0, 0, 1, 0, 0, 0, 0], mode: 'constant', value: { float: 0 } }),
      n('Dropout', ['p'], ['d'], { ratio: { float: 0.3 } }),
      n('Resize', ['d', 'sc'], ['y'], { mode: 'nearest' }),
    ],
    inits: [floatTensor('four', [], [4]), floatTensor('sc', [4], [1, 1, 2, 2])],
  })),
];

describe('onnx: backward rules against finite differences on ONNX Runtime', function () {
  this.timeout(60000);
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c);
    });
  }
  for (const c of CASES.filter((x) => x.name.startsWith('conv'))) {
    it(`${c.name}, polyphase backward`, async () => {
      await checkCase(c, 'polyphase');
    });
  }
  it('conv 7x7 s2 p3 (a ResNet stem), polyphase backward', async () => {
    await checkCase(convCase('conv 7x7 s2 p3', [3, 12, 11], 4, [7, 7], { pads: [3, 3, 3, 3], strides: [2, 2] }, 1, 4 * 6 * 6), 'polyphase');
  });
  it('conv 1x1 s2 (a ResNet downsample), polyphase backward', async () => {
    await checkCase(convCase('conv 1x1 s2', [4, 7, 8], 6, [1, 1], { strides: [2, 2] }, 1, 6 * 4 * 4), 'polyphase');
  });

  it('raises the opset to 16 for overlapping MaxPool windows (ScatterElements with reduction=add) and ORT accepts it', () => {
    const gm = buildGradientModel(buildModel(CASES.find((c) => c.name.startsWith('MaxPool 3x3 s2')) as Case), { layers: [], inputGrad: true });
    assert.strictEqual(gm.opset, 16);
    assert.ok(gm.model.graph?.node?.some((x) => x.opType === 'ScatterElements'));
  });

  it('non-overlapping MaxPool windows use MaxUnpool and keep the opset', () => {
    const c: Case = { name: 'MaxPool 2x2 s2', shape: [2, 4, 6], ySize: 12, values: 'distinct', nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] })] };
    const gm = buildGradientModel(buildModel(c), { layers: [], inputGrad: true });
    assert.strictEqual(gm.opset, 13);
    assert.ok(gm.model.graph?.node?.some((x) => x.opType === 'MaxUnpool'));
    assert.ok(!gm.model.graph?.node?.some((x) => x.opType === 'ScatterElements'));
  });

  it('flips conv weights in the graph: no new weight-sized initializers', () => {
    const c = CASES[0];
    const gm = buildGradientModel(buildModel(c), { layers: [], inputGrad: true });
    const before = (c.inits ?? []).length + 1;
    const added = (gm.model.graph?.initializer ?? []).slice(before);
    const bytes = added.reduce((a, t) => a + (t.rawData?.byteLength ?? 0), 0);
    assert.ok(bytes < 200, `new initializers hold ${bytes} bytes`);
    assert.ok(gm.model.graph?.node?.some((x) => x.opType === 'Slice'), 'flip by Slice with step -1');
  });

  describe('ReLU rules of the input gradient: plain, guided, deconvnet', () => {
    /** one ReLU's backward by hand: forward input x, incoming gradient g */
    const reluBack = (rule: ReluRule, g: number, x: number): number =>
      (rule === 'plain' ? (x > 0 ? g : 0) : rule === 'guided' ? (x > 0 && g > 0 ? g : 0) : Math.max(g, 0));
    /** the projection W_proj [ySize, 3] of buildModel (seed 99): dY/dy = column c */
    const col = (ySize: number, c: number): number[] => {
      const r = rng(99);
      const w = Array.from({ length: ySize * 3 }, () => Math.fround(r()));
      return Array.from({ length: ySize }, (_, i) => w[i * 3 + c]);
    };
    const inputGradOf = async (m: ModelProto, x: Float32Array, shape: [number, number, number, number], c: number, opts: GradientSessionOptions): Promise<Float32Array> => {
      const s = await OnnxGradientSession.create(saveModel(m), { layer: null, executionProvider: 'cpu', intraOpThreads: 1, ...opts });
      try {
        return (await s.run({ data: x, shape, layout: 'nchw' }, new Int32Array([c]))).inputGrad as Float32Array;
      } finally {
        await s.dispose();
      }
    };

    // x -> Relu (node 'r1') -> Relu (node 'r2') -> Flatten -> MatMul(W): dY/dr2 = W[:,c]
    const twoRelus = (): ModelProto => buildModel({
      name: 'two relus', shape: [1, 2, 3], ySize: 6,
      nodes: [node('Relu', ['x'], ['h'], 'r1'), node('Relu', ['h'], ['y'], 'r2')],
    });
    const x6 = Float32Array.from([0.5, -1, 2, 0.3, -0.2, 1.5]);

    for (const [label, opts, expect] of [
      ['plain: g*(x>0)', { inputGrad: 'plain' }, (g: number, xi: number) => (xi > 0 ? g : 0)],
      ['guided: g*(x>0)*(g>0)', { inputGrad: 'guided' }, (g: number, xi: number) => (xi > 0 && g > 0 ? g : 0)],
      ['deconvnet: max(g,0) whatever x', { inputGrad: 'deconvnet' }, (g: number) => Math.max(g, 0)],
      ['guided with both ReLU opted out equals plain', { inputGrad: 'guided', unguidedNodes: ['r1', 'r2'] }, (g: number, xi: number) => (xi > 0 ? g : 0)],
      ['deconvnet with both ReLU opted out equals plain', { inputGrad: 'deconvnet', unguidedNodes: ['r1', 'r2'] }, (g: number, xi: number) => (xi > 0 ? g : 0)],
    ] as Array<[string, GradientSessionOptions, (g: number, xi: number) => number]>) {
      it(`two stacked ReLUs, ${label}`, async () => {
        for (const c of [0, 1, 2]) {
          const g = col(6, c);
          const want = Float32Array.from(x6, (xi, i) => expect(g[i], xi));
          assert.deepStrictEqual(Array.from(await inputGradOf(twoRelus(), x6, [1, 1, 2, 3], c, opts)), Array.from(want));
        }
      });
    }

    // x [N,1,1,3] -> Relu 'r1' -> h -> MatMul(V) -> z -> Relu 'r2' -> y -> Flatten -> MatMul(W_proj)
    const V = [[1, -2, 0.5], [0.3, 0.7, -1], [-1, 1.5, 0.6]];
    const reluMatMulRelu: Case = {
      name: 'Relu, MatMul, Relu', shape: [1, 1, 3], ySize: 3,
      nodes: [node('Relu', ['x'], ['h'], 'r1'), n('MatMul', ['h', 'V'], ['z']), node('Relu', ['z'], ['y'], 'r2')],
      inits: [floatTensor('V', [3, 3], V.flat())],
    };
    const x3 = Float32Array.from([0.8, -0.5, 1.2]);
    /** the input gradient of reluMatMulRelu by hand, with the rule of r1 and of r2 */
    const byHand = (r1: ReluRule, r2: ReluRule, c: number): number[] => {
      const xs = Array.from(x3);
      const v = V.map((row) => row.map(Math.fround));
      const h = xs.map((xi) => Math.max(xi, 0));
      const z = [0, 1, 2].map((j) => h.reduce((a, hi, i) => a + hi * v[i][j], 0));
      const gz = col(3, c).map((g, j) => reluBack(r2, g, z[j]));
      const gh = [0, 1, 2].map((i) => gz.reduce((a, gj, j) => a + v[i][j] * gj, 0));
      return gh.map((g, i) => reluBack(r1, g, xs[i]));
    };
    const close = (got: Float32Array, want: number[], what: string) => {
      assert.strictEqual(got.length, want.length, what);
      want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-6, `${what}: [${Array.from(got)}] vs [${want}] at ${i}`));
    };

    it('ReLU, MatMul, ReLU: each rule equals the hand-computed gradient, and the three differ', async () => {
      const m = buildModel(reluMatMulRelu);
      const seen = new Map<string, string>();
      for (const rule of RELU_RULES) {
        const all: number[] = [];
        for (const c of [0, 1, 2]) {
          const got = await inputGradOf(m, x3, [1, 1, 1, 3], c, { inputGrad: rule });
          close(got, byHand(rule, rule, c), `${rule} class ${c}`);
          all.push(...got);
        }
        seen.set(rule, all.join(','));
      }
      assert.strictEqual(new Set(seen.values()).size, 3, 'the three rules give three different gradients on this net');
    });

    it('ReLU, MatMul, ReLU: unguidedNodes keeps the plain rule at the named ReLU under guided and deconvnet alike', async () => {
      const m = buildModel(reluMatMulRelu);
      for (const rule of ['guided', 'deconvnet'] as const) {
        for (const c of [0, 1, 2]) {
          close(await inputGradOf(m, x3, [1, 1, 1, 3], c, { inputGrad: rule, unguidedNodes: ['r2'] }), byHand(rule, 'plain', c), `${rule}, r2 plain, class ${c}`);
          close(await inputGradOf(m, x3, [1, 1, 1, 3], c, { inputGrad: rule, unguidedNodes: ['r1'] }), byHand('plain', rule, c), `${rule}, r1 plain, class ${c}`);
        }
      }
    });

    it('ReLU, MatMul, ReLU: the plain rule against finite differences', async () => {
      await checkCase({ ...reluMatMulRelu, name: 'Relu, MatMul, Relu (wider)', shape: [2, 2, 3], ySize: 12, nodes: [
        node('Relu', ['x'], ['h'], 'r1'), n('MatMul', ['h', 'V'], ['z']), node('Relu', ['z'], ['y'], 'r2'),
      ] });
    });

    it('Clip (ReLU6) keeps the plain rule unless guidedRelu6; then plain g*(0<x<6), guided g*(0<x<6)*(g>0), deconvnet max(g,0)', async () => {
      const m = buildModel({
        name: 'clip', shape: [1, 2, 3], ySize: 6,
        nodes: [node('Clip', ['x', 'lo', 'hi'], ['y'], 'clip')],
        inits: [floatTensor('lo', [], [0]), floatTensor('hi', [], [6])],
      });
      const xc = Float32Array.from([0.5, -1, 2, 7, 5.5, 1.5]);
      for (const rule of RELU_RULES) {
        for (const relu6 of [false, true]) {
          const g = col(6, 1);
          const inside = (xi: number) => xi > 0 && xi < 6;
          const want = Float32Array.from(xc, (xi, i) => {
            if (!relu6 || rule === 'plain') return inside(xi) ? g[i] : 0;
            return rule === 'guided' ? (inside(xi) && g[i] > 0 ? g[i] : 0) : Math.max(g[i], 0);
          });
          const got = await inputGradOf(m, xc, [1, 1, 2, 3], 1, { inputGrad: rule, guidedRelu6: relu6 });
          assert.deepStrictEqual(Array.from(got), Array.from(want), `${rule}, guidedRelu6 ${relu6}`);
        }
      }
    });

    // x -> Conv -> Relu -> a -> Conv -> Relu -> b; y = Relu(a + b): a is an ancestor of b and also reaches y directly
    const layered: Case = {
      name: 'two conv layers with a skip', shape: [2, 4, 4], ySize: 32, eps: 1e-3,
      nodes: [
        n('Conv', ['x', 'L_W1', 'L_B1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), node('Relu', ['c1'], ['a'], 'ra'),
        n('Conv', ['a', 'L_W2', 'L_B2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), node('Relu', ['c2'], ['b'], 'rb'),
        n('Add', ['a', 'b'], ['s']), node('Relu', ['s'], ['y'], 'ry'),
      ],
      inits: [f('L_W1', [2, 2, 3, 3], 51, 0.7), f('L_B1', [2], 52, 0.2), f('L_W2', [2, 2, 3, 3], 53, 0.7), f('L_B2', [2], 54, 0.2)],
    };
    const layeredInput = () => {
      const r = rng(61);
      return { data: Float32Array.from({ length: 2 * 32 }, () => r() * 2), shape: [2, 2, 4, 4] as [number, number, number, number], layout: 'nchw' as const };
    };
    const classes = () => new Int32Array([-1, 2]);
    const runOf = async (opts: GradientSessionOptions): Promise<GradientRun> => {
      const s = await OnnxGradientSession.create(saveModel(buildModel(layered)), { executionProvider: 'cpu', intraOpThreads: 1, ...opts });
      try {
        return await s.run(layeredInput(), classes());
      } finally {
        await s.dispose();
      }
    };

    it('the conv net with a skip: plain input gradient against finite differences', async () => {
      await checkCase(layered);
    });

    it('several layers in one run (b, then its ancestor a) equal single-layer runs, in the requested order', async () => {
      const multi = await runOf({ layers: ['b', 'a'], inputGrad: 'guided' });
      const [a, b] = [await runOf({ layer: 'a' }), await runOf({ layer: 'b' })];
      assert.deepStrictEqual(multi.layers.map((l) => l.name), ['b', 'a']);
      for (const [got, single] of [[multi.layers[0], b.layers[0]], [multi.layers[1], a.layers[0]]] as const) {
        assert.strictEqual(single.name, got.name);
        assert.deepStrictEqual(got.featureShape, { n: 2, k: 2, h: 4, w: 4, layout: 'nchw' });
        assert.deepStrictEqual(Array.from(got.activations), Array.from(single.activations), `activations ${got.name}`);
        close(got.grads, Array.from(single.grads), `dY/d${got.name}`);
        assert.ok(got.grads.some((v) => v !== 0), `dY/d${got.name} is not all zero`);
      }
      assert.ok(multi.layers[1].grads.some((v, i) => Math.abs(v - multi.layers[0].grads[i]) > 1e-4), 'dY/da differs from dY/db');
      assert.deepStrictEqual(Array.from(multi.classes), Array.from(a.classes));
      assert.deepStrictEqual(Array.from(multi.logits), Array.from(a.logits));
      assert.strictEqual(multi.numClasses, 3);
      close(multi.inputGrad as Float32Array, Array.from((await runOf({ layer: null, inputGrad: 'guided' })).inputGrad as Float32Array), 'guided dY/dx');
    });

    it('layer gradients stay plain in guided and deconvnet sessions (the ReLUs after the layers follow the plain rule there)', async () => {
      const plain = await runOf({ layers: ['a', 'b'] });
      const inputGrads = new Map<string, Float32Array>();
      for (const rule of RELU_RULES) {
        const r = await runOf({ layers: ['a', 'b'], inputGrad: rule });
        for (const i of [0, 1]) close(r.layers[i].grads, Array.from(plain.layers[i].grads), `${rule} session: dY/d${r.layers[i].name}`);
        inputGrads.set(rule, r.inputGrad as Float32Array);
      }
      // the rules do differ on this net (so the layer gradients could have been affected)
      const p = inputGrads.get('plain') as Float32Array;
      for (const rule of ['guided', 'deconvnet']) {
        assert.ok((inputGrads.get(rule) as Float32Array).some((v, i) => Math.abs(v - p[i]) > 1e-4), `${rule} input gradient differs from plain`);
      }
    });

    it('rejects bad layers and inputGrad with the house messages', async () => {
      const bytes = saveModel(buildModel(layered));
      const create = (o: unknown) => OnnxGradientSession.create(bytes, { executionProvider: 'cpu', ...(o as GradientSessionOptions) });
      await assert.rejects(create({ layers: ['a'], layer: 'a' }), { name: 'RangeError', message: "Expected no value when layers is given for layer but received 'a' of type string" });
      await assert.rejects(create({ layers: ['a', 'b', 'a'] }), { name: 'RangeError', message: "Expected a tensor not listed before in layers for layers[2] but received 'a' of type string" });
      await assert.rejects(create({ layers: ['a', 7] }), { name: 'TypeError', message: 'Expected tensor name (string) for layers[1] but received 7 of type number' });
      await assert.rejects(create({ layers: 'a' }), { name: 'TypeError', message: "Expected array of tensor names for layers but received 'a' of type string" });
      await assert.rejects(create({ layer: 'a', inputGrad: true }), { name: 'TypeError', message: "Expected one of 'plain', 'guided', 'deconvnet' for inputGrad but received true of type boolean" });
      await assert.rejects(create({ layer: 'a', inputGrad: 'gradient' }), { name: 'RangeError', message: "Expected one of 'plain', 'guided', 'deconvnet' for inputGrad but received 'gradient' of type string" });
      await assert.rejects(create({ layers: [] }), { name: 'RangeError', message: 'Expected a layer or an inputGrad ReLU rule for options but received object Object' });
      assert.throws(() => buildGradientModel(buildModel(layered), { layers: [], inputGrad: true, reluRule: 'guide' as ReluRule }),
        { name: 'RangeError', message: "Expected one of 'plain', 'guided', 'deconvnet' for reluRule but received 'guide' of type string" });
      assert.throws(() => buildGradientModel(buildModel(layered), { layers: ['a', 'a'] }), /Target layer a is listed twice/);
    });
  });

  it('names the op and the node of an op without a rule, when the model is built', () => {
    const m = buildModel({ name: 'cos', shape: [1, 2, 3], ySize: 6, nodes: [node('Cos', ['x'], ['e'], 'my_cos_node'), n('Relu', ['e'], ['y'])] });
    assert.throws(() => buildGradientModel(m, { layers: [], inputGrad: true }), (e: unknown) => {
      assert.ok(e instanceof GradcamError);
      assert.match(e.message, /Cannot differentiate Cos node 'my_cos_node'/);
      assert.match(e.message, /no backward rule for op Cos/);
      return true;
    });
    // a data-dependent Conv weight is refused, not ignored
    const dyn = buildModel({
      name: 'dynamic conv', shape: [1, 3, 3], ySize: 9,
      nodes: [n('Reshape', ['x', 'wshape'], ['w']), n('Conv', ['x', 'w'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })],
      inits: [int64Tensor('wshape', [4], [1, 1, 3, 3])],
    });
    assert.throws(() => buildGradientModel(dyn, { layers: [], inputGrad: true }), /Cannot differentiate Conv node 'Conv_y': input 1 \(w\) depends on x but has no backward rule/);
    // a target layer after the unknown op needs no rule for it
    assert.doesNotThrow(() => buildGradientModel(m, { layers: ['y'], inputGrad: false }));
  });
});
