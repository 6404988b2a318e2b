/**
 * What every rule shares: the rule interface, the pass mode (how Relu/Clip backpropagate in the
 * pass being built), node-attribute readers and small gradient helpers.
 */
import { GradcamError } from '../../../errors';
import { NodeProto, getAttr } from '../../proto';
import type { Builder } from '../builder';

export type Grad = string | undefined;

/** The ReLU backward rule of a pass (one definition, in the method registry's vocabulary). */
import type { ReluRule } from '../../../cam/methods/types';
export { RELU_RULES } from '../../../cam/methods/types';
export type { ReluRule };

/** How the rule set treats Relu/Clip in the pass being built. */
export interface PassMode {
  reluRule: ReluRule;
  /** Clip (ReLU6) follows reluRule too; otherwise it keeps the plain rule */
  relu6: boolean;
  /** node names that keep the plain rule */
  plainNodes: Set<string>;
}

/** The plain pass: what the layer gradients dY/dA always use. */
export const PLAIN_PASS: PassMode = { reluRule: 'plain', relu6: false, plainNodes: new Set() };

export interface Rule {
  /** indices of inputs that can carry a gradient; 'all' for variadic ops */
  diff: number[] | 'all';
  /** indices of outputs that carry a gradient (default [0]) */
  outs?: number[] | 'all';
  grad(b: Builder, n: NodeProto, gy: Grad[], need: boolean[], mode: PassMode): Grad[];
}

export function ints(n: NodeProto, name: string): number[] | undefined {
  const v = getAttr(n, name);
  return Array.isArray(v) ? v.map(Number) : undefined;
}
export function int(n: NodeProto, name: string, d: number): number {
  const v = getAttr(n, name);
  return typeof v === 'number' ? v : d;
}
export function flt(n: NodeProto, name: string, d: number): number {
  const v = getAttr(n, name);
  return typeof v === 'number' ? v : d;
}
export function str(n: NodeProto, name: string, d: string): string {
  const v = getAttr(n, name);
  return typeof v === 'string' ? v : d;
}
export const inp = (n: NodeProto, i: number): string => (n.input ?? [])[i] ?? '';
export const out = (n: NodeProto, i: number): string => (n.output ?? [])[i] ?? '';

export function unsupported(n: NodeProto, why: string): GradcamError {
  return new GradcamError(`Cannot differentiate ${n.opType} node '${n.name ?? '(unnamed)'}': ${why}`, 'EUNSUPPORTED');
}

export const passThrough: Rule = { diff: [0], grad: (_b, _n, gy) => [gy[0]] };
export const reshapeBack: Rule = { diff: [0], grad: (b, n, gy) => [b.reshapeLike(gy[0] as string, inp(n, 0))] };

/** Element-wise (broadcasting) op: each needed input's gradient f(i), summed back to its shape. */
export function elementwise(b: Builder, n: NodeProto, gy: string, need: boolean[], f: (i: number) => string): Grad[] {
  const y = out(n, 0);
  const oShape = b.needShape(y, n);
  return (n.input ?? []).map((x, i) => {
    if (!need[i]) return undefined;
    return b.reduceTo(f(i), oShape, b.needShape(x, n), x);
  });
}


export const gOf = (gy: Grad[]): string => gy[0] as string;
