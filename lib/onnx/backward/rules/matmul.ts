/**
 * Backward rules of matrix products: MatMul (batched, broadcasting) and Gemm.
 */
import { Grad, Rule, flt, inp, int, out, unsupported } from './common';

export const MATMUL_RULES: Record<string, Rule> = {
  MatMul: {
    diff: [0, 1],
    grad: (b, n, gy, need) => {
      const a = inp(n, 0); const bb = inp(n, 1);
      const as = b.needShape(a, n); const bs = b.needShape(bb, n); const ys = b.needShape(out(n, 0), n);
      if (as.length < 2 || bs.length < 2) throw unsupported(n, 'MatMul with a 1-D operand');
      const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      const g = gy[0] as string;
      const res: Grad[] = [undefined, undefined];
      if (need[0]) res[0] = b.reduceTo(b.op1('MatMul', [g, b.op1('Transpose', [bb], { perm: swap(bs.length) })]), ys, as, a);
      if (need[1]) res[1] = b.reduceTo(b.op1('MatMul', [b.op1('Transpose', [a], { perm: swap(as.length) }), g]), ys, bs, bb);
      return res;
    },
  },
  Gemm: {
    diff: [0, 1, 2],
    grad: (b, n, gy, need) => {
      const A = inp(n, 0); const B = inp(n, 1); const C = inp(n, 2);
      const tA = int(n, 'transA', 0); const tB = int(n, 'transB', 0);
      const alpha = flt(n, 'alpha', 1); const beta = flt(n, 'beta', 1);
      const g = gy[0] as string;
      const res: Grad[] = [undefined, undefined, undefined];
      if (need[0]) {
        res[0] = tA
          ? b.op1('Gemm', [B, g], { alpha: { float: alpha }, transA: tB, transB: 1 })
          : b.op1('Gemm', [g, B], { alpha: { float: alpha }, transB: tB ? 0 : 1 });
      }
      if (need[1]) {
        res[1] = tB
          ? b.op1('Gemm', [g, A], { alpha: { float: alpha }, transA: 1, transB: tA })
          : b.op1('Gemm', [A, g], { alpha: { float: alpha }, transA: tA ? 0 : 1 });
      }
      if (need[2] && C) {
        const gc = beta === 1 ? g : b.mul(g, b.f32([beta]));
        res[2] = b.reduceTo(gc, b.needShape(out(n, 0), n), b.needShape(C, n), C);
      }
      return res;
    },
  },
};
