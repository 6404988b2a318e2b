/**
 * Backward rules of element-wise arithmetic (broadcasting binary and variadic ops) and unary math.
 */
import { Rule, elementwise, gOf, inp, out } from './common';

export const ELEMENTWISE_RULES: Record<string, Rule> = {
  Neg: { diff: [0], grad: (b, _n, gy) => [b.neg(gy[0] as string)] },
  Add: { diff: [0, 1], grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, () => gy[0] as string) },
  Sub: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => (i === 0 ? gy[0] as string : b.neg(gy[0] as string))),
  },
  Mul: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => b.mul(gy[0] as string, inp(n, 1 - i))),
  },
  Div: {
    diff: [0, 1],
    grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, (i) => {
      const g = gy[0] as string;
      if (i === 0) return b.op1('Div', [g, inp(n, 1)]);
      // d(a/b)/db = -y/b
      return b.neg(b.op1('Div', [b.mul(g, out(n, 0)), inp(n, 1)]));
    }),
  },
  Sum: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gy[0] as string, need, () => gy[0] as string) },
  Mean: {
    diff: 'all',
    grad: (b, n, gy, need) => {
      const s = b.mul(gy[0] as string, b.f32([1 / (n.input ?? []).length]));
      return elementwise(b, n, s, need, () => s);
    },
  },
  Max: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gOf(gy), need, (i) => b.where(b.op1('Equal', [inp(n, i), out(n, 0)]), gOf(gy))) },
  Min: { diff: 'all', grad: (b, n, gy, need) => elementwise(b, n, gOf(gy), need, (i) => b.where(b.op1('Equal', [inp(n, i), out(n, 0)]), gOf(gy))) },
  Where: {
    diff: [1, 2],
    grad: (b, n, gy, need) => {
      const g = gOf(gy); const c = inp(n, 0);
      return elementwise(b, n, g, need, (i) => (i === 1 ? b.where(c, g) : b.op1('Where', [c, b.f32([0]), g])));
    },
  },
  Pow: {
    diff: [0, 1],
    grad: (b, n, gy, need) => {
      const x = inp(n, 0); const e = inp(n, 1); const g = gOf(gy);
      return elementwise(b, n, g, need, (i) => {
        if (i === 0) {
          const ev = b.value(e);
          // d x^e / dx = e x^(e-1)
          const pm1 = ev && ev.length === 1 ? b.op1('Pow', [x, b.f32([ev[0] - 1])]) : b.op1('Pow', [x, b.op1('Sub', [e, b.f32([1])])]);
          return b.mul(g, b.mul(ev && ev.length === 1 ? b.f32([ev[0]]) : e, pm1));
        }
        return b.mul(g, b.mul(out(n, 0), b.op1('Log', [x])));
      });
    },
  },
  Erf: {
    diff: [0],
    // d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
    grad: (b, n, gy) => [b.mul(gOf(gy), b.mul(b.f32([2 / Math.sqrt(Math.PI)]), b.op1('Exp', [b.neg(b.mul(inp(n, 0), inp(n, 0)))])))],
  },
  Sqrt: { diff: [0], grad: (b, n, gy) => [b.op1('Div', [gOf(gy), b.mul(out(n, 0), b.f32([2]))])] },
  Exp: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), out(n, 0))] },
  Log: { diff: [0], grad: (b, n, gy) => [b.op1('Div', [gOf(gy), inp(n, 0)])] },
  Reciprocal: { diff: [0], grad: (b, n, gy) => [b.neg(b.mul(gOf(gy), b.mul(out(n, 0), out(n, 0))))] },
  Abs: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), b.op1('Sign', [inp(n, 0)]))] },
  Softplus: { diff: [0], grad: (b, n, gy) => [b.mul(gOf(gy), b.op1('Sigmoid', [inp(n, 0)]))] },
};
