/**
 * Backward rules of normalizations: BatchNormalization (inference), LayerNormalization, InstanceNormalization.
 */
import { NodeProto } from '../../proto';
import { Builder } from '../builder';
import { Rule, flt, gOf, inp, int, unsupported } from './common';

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

export const NORMALIZATION_RULES: Record<string, Rule> = {
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
