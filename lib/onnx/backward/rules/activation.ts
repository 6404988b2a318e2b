/**
 * Backward rules of activations. Relu and Clip follow the pass mode (plain, guided or deconvnet ReLU rule).
 */
import { NodeProto, getAttr } from '../../proto';
import { Builder } from '../builder';
import { PassMode, ReluRule, Rule, elementwise, flt, gOf, inp, int, out } from './common';

/** The rule a Relu (relu6 = false) or Clip node follows in this pass. */
function reluRuleFor(n: NodeProto, m: PassMode, relu6: boolean): ReluRule {
  if ((relu6 && !m.relu6) || m.plainNodes.has(n.name ?? '')) return 'plain';
  return m.reluRule;
}

/**
 * The ReLU-family backward: `mask` is where the forward op passes its input through (x > 0 for
 * ReLU, lo < x < hi for Clip). plain g*mask, guided g*mask*(g>0), deconvnet max(g,0) without the mask.
 */
function reluBackward(b: Builder, rule: ReluRule, g: string, mask: () => string | undefined): string {
  if (rule === 'deconvnet') return b.op1('Relu', [g]);
  const gg = rule === 'guided' ? b.op1('Relu', [g]) : g;
  const m = mask();
  return m ? b.where(m, gg) : gg;
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

export const ACTIVATION_RULES: Record<string, Rule> = {
  Relu: {
    diff: [0],
    grad: (b, n, gy, _need, m) => {
      // mask from the OUTPUT (y > 0 <=> x > 0) so ORT keeps its Conv+Relu fusion
      return [reluBackward(b, reluRuleFor(n, m, false), gOf(gy), () => b.op1('Greater', [out(n, 0), b.f32([0])]))];
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
      // Clip (ReLU6 when lo = 0, hi = 6) follows the pass's rule only when guidedRelu6 is set:
      // plain g*(lo<x<hi), guided g*(lo<x<hi)*(g>0), deconvnet max(g,0). Deconvnet's ReLU backward
      // ignores the forward input altogether, so its Clip backward ignores both bounds of x
      // (cutting at hi would be a guided-style mask) and keeps only the rectification of g.
      return [reluBackward(b, reluRuleFor(n, m, true), gOf(gy), () => {
        let mask: string | undefined;
        if (lo) mask = b.op1('Greater', [y, lo]);
        if (hi) {
          const mh = b.op1('Less', [y, hi]);
          mask = mask ? b.op1('And', [mask, mh]) : mh;
        }
        return mask;
      })];
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
};
