/**
 * The driver of the backward generator: finds the nodes on a gradient path, runs the rules in
 * reverse order, and assembles the forward+backward model (see index.ts for the outputs).
 */
import { GradcamError, checkOneOf } from '../../errors';
import { GraphIndex, NON_DIFFERENTIABLE, Shape, inferShapes, isFloatType } from '../graph';
import { DataType, ModelProto, NodeProto, ValueInfoProto } from '../proto';
import { Builder } from './builder';
import { upgradeNodes } from './opset';
import { Grad, PLAIN_PASS, PassMode, RELU_RULES, RULES, ReluRule, Rule, maxPoolOverlaps } from './rules';
import { inp, int, out, unsupported } from './rules/common';

export interface BackwardOptions {
  /** target tensors for dY/dA (may be empty when only the input gradient is wanted) */
  layers: string[];
  /** also output dY/dinput (full backward) */
  inputGrad?: boolean;
  /**
   * the ReLU rule of the input gradient (default 'guided'); the layer gradients dY/dA always use
   * the plain rule, also when both come from one model
   */
  reluRule?: ReluRule;
  /** Clip (ReLU6) follows reluRule as well (default false: Clip keeps the plain rule) */
  guidedRelu6?: boolean;
  /** node names whose ReLU (or Clip) keeps the plain rule in the input gradient, under 'guided' and 'deconvnet' alike */
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
  const reluRule = opts.reluRule === undefined ? 'guided' : checkOneOf('reluRule', opts.reluRule, RELU_RULES);
  const g = new GraphIndex(model);
  if (g.opset < 9) throw new GradcamError(`ONNX opset ${g.opset} is not supported (9 or newer is)`, 'EUNSUPPORTED');
  const logits = logitsOf(g, opts.logits);
  const inputShape = opts.inputShape ?? g.inputShape();
  const inf = inferShapes(g, inputShape);
  for (const [i, l] of opts.layers.entries()) {
    if (opts.layers.indexOf(l) !== i) throw new GradcamError(`Target layer ${l} is listed twice`, 'EBADLAYER');
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
    // the plain rule: dY/dA is the true gradient whatever rule the input gradient follows (the two
    // passes share the nodes they compute alike; a guided or deconvnet Relu backward differs in its
    // inputs, so it is a node of its own)
    const grads = backprop(b, plainPath, seed, logits, PLAIN_PASS);
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
    const grads = backprop(b, fullPath, seed, logits, {
      reluRule, relu6: !!opts.guidedRelu6, plainNodes: new Set(opts.unguidedNodes ?? []),
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
