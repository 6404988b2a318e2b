/**
 * A model as a straight-line program of differentiable steps, in topological order. The Layers
 * and Graph adapters each translate their model into one; the explainer only runs programs.
 * Running a program ourselves (instead of model.predict) is what lets us choose every backward
 * rule: guided ReLUs, unfused convolutions whose input gradient never computes a filter gradient,
 * and logits taken before a final softmax.
 */
import * as tf from '@tensorflow/tfjs';
import type { RunMode } from './ops';

export interface ProgramNode {
  /** unique key of the node's output value */
  key: string;
  /** the name users pass as `layer` (layer name or graph node name) */
  name: string;
  /** layer class or op type */
  type: string;
  /** keys of the input values */
  inputs: string[];
  /** output shape with the batch dim null; null dims unknown */
  shape: Array<number | null>;
  /**
   * Computes the output. `atLogits` is true for the node whose output is the logits: a layer with
   * a softmax activation returns its pre-activation there.
   */
  run(inputs: tf.Tensor[], mode: RunMode, atLogits: boolean): tf.Tensor;
}

export interface Program {
  inputKey: string;
  /** input shape NHWC with the batch dim null */
  inputShape: Array<number | null>;
  /** key of the node producing the logits [n, classes] */
  logitsKey: string;
  nodes: ProgramNode[];
  /** constant values (graph weights) read by nodes; owned by the model, never disposed here */
  constants: Map<string, tf.Tensor>;
  /** tensors the program owns (folded constants), disposed with it */
  owned: tf.Tensor[];
  /** node types run through a generic fallback (no guided ReLU inside them) */
  fallbacks: string[];
}

/**
 * Runs the nodes in `only` (all when undefined) in order, reading and writing `values`. `deltas`:
 * added to the outputs of those nodes as they are computed (a zero delta differentiated gives the
 * gradient at that node while the values still flow through it).
 */
export function evaluate(p: Program, values: Map<string, tf.Tensor>, mode: RunMode, only?: Set<string>, deltas?: Map<string, tf.Tensor>): tf.Tensor {
  for (const node of p.nodes) {
    if (only ? !only.has(node.key) : values.has(node.key)) continue;
    const ins = node.inputs.map((k) => {
      const v = values.get(k) ?? p.constants.get(k);
      if (!v) throw new Error(`internal: value '${k}' missing for '${node.name}'`);
      return v;
    });
    const out = node.run(ins, mode, node.key === p.logitsKey);
    const d = deltas?.get(node.key);
    values.set(node.key, d ? tf.add(out, d) : out);
    if (node.key === p.logitsKey && !only) break;
  }
  const logits = values.get(p.logitsKey);
  if (!logits) throw new Error('internal: logits not computed');
  return logits;
}

/** Nodes downstream of `key` (excluding it) that the logits depend on. */
export function descendants(p: Program, key: string): Set<string> {
  const down = new Set<string>();
  const reach = new Set<string>([key]);
  for (const node of p.nodes) {
    if (node.key === key) continue;
    if (node.inputs.some((k) => reach.has(k))) {
      reach.add(node.key);
      down.add(node.key);
    }
  }
  // keep only what leads to the logits
  const needed = new Set<string>([p.logitsKey]);
  for (let i = p.nodes.length - 1; i >= 0; i--) {
    const node = p.nodes[i];
    if (needed.has(node.key)) for (const k of node.inputs) needed.add(k);
  }
  for (const k of [...down]) if (!needed.has(k)) down.delete(k);
  return down;
}

/** Values the downstream part reads from upstream: the frontier to keep between passes. */
export function frontier(p: Program, key: string, down: Set<string>): string[] {
  const keep = new Set<string>([key]);
  for (const node of p.nodes) {
    if (!down.has(node.key)) continue;
    for (const k of node.inputs) if (!down.has(k) && !p.constants.has(k)) keep.add(k);
  }
  return [...keep];
}
